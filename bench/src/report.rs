//! Figures of one run, their medians over repeated runs, and the three outputs: a table on
//! stdout, JSON lines, and an SVG plot of deliveries/s and p99 latency against C.

use crate::Target;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Above this share of its CPU the generator itself may be the bottleneck: the figure is then
/// a lower bound on what the server can do.
pub const GEN_SATURATED: f64 = 0.85;

/// What one fan-out run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    /// Server kind.
    pub target: Target,
    /// Clients.
    pub clients: u32,
    /// Messages per client.
    pub messages: u32,
    /// Closed-loop window (0 in open loop).
    pub window: u32,
    /// Open-loop total rate, messages/s.
    pub rate: Option<f64>,
    /// The server binary measured (natter and bridge runs; the baseline is this tool).
    pub server_bin: String,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// Deliveries counted.
    pub deliveries: u64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Server CPU over the measured part, as a share of one core (bridge runs: server + bridge).
    pub server_cpu: f64,
    /// Load generator CPU, share of one core.
    pub gen_cpu: f64,
    /// Bridge runs: the bridge's own CPU, share of one core (also in `server_cpu`).
    pub bridge_cpu: Option<f64>,
    /// Server peak RSS (VmHWM), bytes.
    pub server_peak_rss: u64,
    /// Bridge peak RSS, bytes (bridge runs).
    pub bridge_peak_rss: Option<u64>,
    /// Lost and duplicated deliveries.
    pub lost: u64,
    /// Duplicated or out of order.
    pub duplicated: u64,
    /// Every expected delivery arrived.
    pub complete: bool,
    /// Measured seconds.
    pub seconds: f64,
    /// First errors.
    pub errors: Vec<String>,
    /// CPU seconds of each server-side process over the measured part (natter-server, then
    /// the bridge, nats-server and further cluster nodes when the run has them).
    pub cpu_parts: Vec<(String, f64)>,
}

/// One run's CPU by process, in microseconds per message sent (what the cluster model in
/// bench/README.md is built from).
pub fn cpu_parts_line(f: &RunFigures) -> String {
    let sent = (u64::from(f.clients) * u64::from(f.messages)).max(1) as f64;
    let parts: Vec<String> = f
        .cpu_parts
        .iter()
        .map(|(name, c)| format!("{name} {c:.2} s ({:.1} us/msg)", c * 1e6 / sent))
        .collect();
    format!("cpu by process: {}", parts.join(", "))
}

/// Medians of the runs of one configuration (each figure's median on its own).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Server kind.
    pub target: Target,
    /// Clients.
    pub clients: u32,
    /// Messages per client.
    pub messages: u32,
    /// Window.
    pub window: u32,
    /// Open-loop rate.
    pub rate: Option<f64>,
    /// Runs the medians are over.
    pub runs: usize,
    /// Runs with every delivery, none duplicated.
    pub clean_runs: usize,
    /// Median deliveries/s.
    pub deliveries_per_s: f64,
    /// Median p50, µs.
    pub p50_us: f64,
    /// Median p99, µs.
    pub p99_us: f64,
    /// Median max, µs.
    pub max_us: f64,
    /// Median server CPU share.
    pub server_cpu: f64,
    /// Median generator CPU share.
    pub gen_cpu: f64,
    /// Highest generator CPU share of the runs.
    pub gen_cpu_max: f64,
    /// Median server peak RSS, bytes.
    pub server_peak_rss: u64,
    /// Median of each run's deliveries per second of server CPU (deliveries/s over the
    /// server's share of a core): on a shared machine, the figure that compares across runs.
    pub deliveries_per_cpu_s: f64,
    /// Bridge runs: median of each run's bridge CPU over natter-server's CPU (both relay every
    /// delivery, so this is the bridge's CPU per delivery over natter-server's).
    pub bridge_cpu_ratio: Option<f64>,
    /// Whether the generator was above [`GEN_SATURATED`] in any run (figures are lower bounds).
    pub gen_saturated: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Summary {
    /// Medians of `runs` (all of one configuration; at least one).
    pub fn of(runs: &[RunFigures]) -> Option<Summary> {
        let first = runs.first()?;
        let m = |f: fn(&RunFigures) -> f64| median(runs.iter().map(f).collect());
        let gen_cpu_max = runs.iter().map(|r| r.gen_cpu).fold(0.0, f64::max);
        Some(Summary {
            target: first.target,
            clients: first.clients,
            messages: first.messages,
            window: first.window,
            rate: first.rate,
            runs: runs.len(),
            clean_runs: runs
                .iter()
                .filter(|r| r.complete && r.lost == 0 && r.duplicated == 0)
                .count(),
            deliveries_per_s: m(|r| r.deliveries_per_s),
            p50_us: m(|r| r.p50_us),
            p99_us: m(|r| r.p99_us),
            max_us: m(|r| r.max_us),
            server_cpu: m(|r| r.server_cpu),
            gen_cpu: m(|r| r.gen_cpu),
            gen_cpu_max,
            server_peak_rss: m(|r| r.server_peak_rss as f64) as u64,
            deliveries_per_cpu_s: m(|r| r.deliveries_per_s / r.server_cpu.max(1e-9)),
            bridge_cpu_ratio: first.bridge_cpu.map(|_| {
                m(|r| {
                    let b = r.bridge_cpu.unwrap_or(0.0);
                    b / (r.server_cpu - b).max(1e-9)
                })
            }),
            gen_saturated: gen_cpu_max > GEN_SATURATED,
        })
    }
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// The fan-out table: one line per configuration, then natter (and the bridge) against the
/// baseline of the same C.
pub fn fanout_table(sums: &[Summary]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<15} {:>5} {:>6} {:>4} {:>7} {:>10} {:>9} {:>9} {:>9} {:>7} {:>7} {:>8} {:>5}\n",
        "target",
        "C",
        "M",
        "W",
        "rate",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "srv cpu",
        "gen cpu",
        "srv RSS",
        "clean"
    ));
    for s in sums {
        out.push_str(&format!(
            "{:<15} {:>5} {:>6} {:>4} {:>7} {:>10} {:>9} {:>9} {:>9} {:>6.0}% {:>6.0}%{} {:>7.1}M {:>2}/{}\n",
            s.target.name(),
            s.clients,
            s.messages,
            s.window,
            s.rate.map_or_else(|| "-".into(), si),
            si(s.deliveries_per_s),
            ms(s.p50_us),
            ms(s.p99_us),
            ms(s.max_us),
            s.server_cpu * 100.0,
            s.gen_cpu * 100.0,
            if s.gen_saturated { "!" } else { " " },
            s.server_peak_rss as f64 / (1024.0 * 1024.0),
            s.clean_runs,
            s.runs,
        ));
    }
    let base: BTreeMap<(u32, u64), &Summary> = sums
        .iter()
        .filter(|s| s.target == Target::Baseline)
        .map(|s| ((s.clients, s.rate.map_or(0, |r| r as u64)), s))
        .collect();
    let mut ratios = String::new();
    for s in sums.iter().filter(|s| s.target != Target::Baseline) {
        if let Some(b) = base.get(&(s.clients, s.rate.map_or(0, |r| r as u64))) {
            ratios.push_str(&format!(
                "{:<9} C={:<5} deliveries/s {:.2} x baseline, p50 {:.2} x, p99 {:.2} x\n",
                s.target.name(),
                s.clients,
                s.deliveries_per_s / b.deliveries_per_s.max(1e-9),
                s.p50_us / b.p50_us.max(1e-9),
                s.p99_us / b.p99_us.max(1e-9),
            ));
        }
    }
    let natter: BTreeMap<u32, &Summary> = sums
        .iter()
        .filter(|s| s.target == Target::Natter)
        .map(|s| (s.clients, s))
        .collect();
    for s in sums.iter().filter(|s| s.target == Target::NatterTls) {
        if let Some(n) = natter.get(&s.clients) {
            ratios.push_str(&format!(
                "natter-tls C={:<5} deliveries/s {:.2} x natter, p50 {:+.3} ms, p99 {:+.3} ms against natter\n",
                s.clients,
                s.deliveries_per_s / n.deliveries_per_s.max(1e-9),
                (s.p50_us - n.p50_us) / 1000.0,
                (s.p99_us - n.p99_us) / 1000.0,
            ));
        }
    }
    for s in sums.iter().filter(|s| s.target == Target::Bridge) {
        if let Some(n) = natter.get(&s.clients) {
            ratios.push_str(&format!(
                "bridge    C={:<5} deliveries/s {:.2} x natter, p50 +{:.3} ms over natter{}\n",
                s.clients,
                s.deliveries_per_s / n.deliveries_per_s.max(1e-9),
                (s.p50_us - n.p50_us) / 1000.0,
                s.bridge_cpu_ratio
                    .map(|r| format!(", bridge CPU per delivery {r:.2} x natter-server's"))
                    .unwrap_or_default(),
            ));
        }
    }
    // natter with a feature on against natter without it, in the same run.
    for s in sums.iter().filter(|s| {
        matches!(
            s.target,
            Target::NatterStore
                | Target::NatterAccounts
                | Target::NatterMetrics
                | Target::NatterAll
        )
    }) {
        if let Some(n) = natter.get(&s.clients) {
            ratios.push_str(&format!(
                "{:<15} C={:<5} deliveries/s {:.2} x natter, p50 {:.2} x, p99 {:.2} x\n",
                s.target.name(),
                s.clients,
                s.deliveries_per_s / n.deliveries_per_s.max(1e-9),
                s.p50_us / n.p50_us.max(1e-9),
                s.p99_us / n.p99_us.max(1e-9),
            ));
        }
    }
    // The cost of clustering (issue 23): the room over two nodes and NATS against one node.
    for s in sums.iter().filter(|s| s.target == Target::NatterCluster) {
        if let Some(n) = natter.get(&s.clients) {
            ratios.push_str(&format!(
                "natter-cluster2 C={:<5} deliveries/s {:.2} x natter, p99 {:.2} x, deliveries per cpu-s (nodes + nats-server) {:.2} x natter\n",
                s.clients,
                s.deliveries_per_s / n.deliveries_per_s.max(1e-9),
                s.p99_us / n.p99_us.max(1e-9),
                s.deliveries_per_cpu_s / n.deliveries_per_cpu_s.max(1e-9),
            ));
        }
    }
    // The same against one node with its SQLite store: the single node's durable backend,
    // as the cluster is a cluster's.
    let store: BTreeMap<u32, &Summary> = sums
        .iter()
        .filter(|s| s.target == Target::NatterStore)
        .map(|s| (s.clients, s))
        .collect();
    for s in sums.iter().filter(|s| s.target == Target::NatterCluster) {
        if let Some(n) = store.get(&s.clients) {
            ratios.push_str(&format!(
                "natter-cluster2 C={:<5} deliveries/s {:.2} x natter-store, p99 {:.2} x, deliveries per cpu-s (nodes + nats-server) {:.2} x natter-store\n",
                s.clients,
                s.deliveries_per_s / n.deliveries_per_s.max(1e-9),
                s.p99_us / n.p99_us.max(1e-9),
                s.deliveries_per_cpu_s / n.deliveries_per_cpu_s.max(1e-9),
            ));
        }
    }
    // natter's IRC listener against its binary protocol, and against InspIRCd.
    let inspircd: BTreeMap<u32, &Summary> = sums
        .iter()
        .filter(|s| s.target == Target::Inspircd)
        .map(|s| (s.clients, s))
        .collect();
    for s in sums.iter().filter(|s| s.target == Target::Irc) {
        if let Some(n) = natter.get(&s.clients) {
            ratios.push_str(&format!(
                "irc       C={:<5} deliveries/s {:.2} x natter, p50 {:.2} x, p99 {:.2} x\n",
                s.clients,
                s.deliveries_per_s / n.deliveries_per_s.max(1e-9),
                s.p50_us / n.p50_us.max(1e-9),
                s.p99_us / n.p99_us.max(1e-9),
            ));
        }
        if let Some(i) = inspircd.get(&s.clients) {
            ratios.push_str(&format!(
                "irc       C={:<5} deliveries/s {:.2} x inspircd, p50 {:.2} x, p99 {:.2} x\n",
                s.clients,
                s.deliveries_per_s / i.deliveries_per_s.max(1e-9),
                s.p50_us / i.p50_us.max(1e-9),
                s.p99_us / i.p99_us.max(1e-9),
            ));
        }
    }
    if !ratios.is_empty() {
        out.push('\n');
        out.push_str(&ratios);
    }
    if sums.iter().any(|s| s.gen_saturated) {
        out.push_str(&format!(
            "\n! the load generator was above {:.0}% CPU in a run: that figure is a lower bound\n",
            GEN_SATURATED * 100.0
        ));
    }
    out
}

/// Deliveries per second of server CPU, each target against the baseline of the same C and
/// rate (the big room's figure: both servers may use their whole core, so the work done per
/// CPU-second is what tells them apart).
pub fn per_cpu_table(sums: &[Summary]) -> String {
    let mut out = format!(
        "{:<15} {:>5} {:>7} {:>14} {:>8} {:>14} {:>12}\n",
        "target", "C", "rate", "deliv/cpu-s", "srv cpu", "per cpu-s", "p99"
    );
    let base: BTreeMap<(u32, u64), &Summary> = sums
        .iter()
        .filter(|s| s.target == Target::Baseline)
        .map(|s| ((s.clients, s.rate.map_or(0, |r| r as u64)), s))
        .collect();
    for s in sums {
        let b = base.get(&(s.clients, s.rate.map_or(0, |r| r as u64)));
        let (per_cpu, p99) = match b {
            Some(b) if s.target != Target::Baseline => (
                format!(
                    "{:.2} x base",
                    s.deliveries_per_cpu_s / b.deliveries_per_cpu_s.max(1e-9)
                ),
                format!("{:.2} x base", s.p99_us / b.p99_us.max(1e-9)),
            ),
            _ => ("-".into(), "-".into()),
        };
        out.push_str(&format!(
            "{:<15} {:>5} {:>7} {:>14} {:>7.0}% {:>14} {:>12}\n",
            s.target.name(),
            s.clients,
            s.rate.map_or_else(|| "-".into(), si),
            si(s.deliveries_per_cpu_s),
            s.server_cpu * 100.0,
            per_cpu,
            p99,
        ));
    }
    out
}

/// Appends `records` as JSON lines to `path`.
pub fn append_json<T: Serialize>(path: &Path, records: &[T]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for r in records {
        let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        writeln!(f, "{line}")?;
    }
    Ok(())
}

/// Plots deliveries/s and p99 against C, one line per target (closed-loop summaries only).
pub fn plot(path: &Path, sums: &[Summary]) -> Result<(), String> {
    let closed: Vec<&Summary> = sums.iter().filter(|s| s.rate.is_none()).collect();
    if closed.is_empty() {
        return Ok(());
    }
    let cmax = closed.iter().map(|s| s.clients).max().unwrap_or(10) as f64 * 1.5;
    let cmin = closed.iter().map(|s| s.clients).min().unwrap_or(10) as f64 / 1.5;
    let rmax = closed
        .iter()
        .map(|s| s.deliveries_per_s)
        .fold(0.0, f64::max)
        * 1.1
        / 1e6;
    let pmax = closed.iter().map(|s| s.p99_us).fold(0.0, f64::max) * 1.1 / 1000.0;
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(600);
    let series = |t: Target, pick: fn(&Summary) -> f64| -> Vec<(f64, f64)> {
        closed
            .iter()
            .filter(|s| s.target == t)
            .map(|s| (f64::from(s.clients), pick(s)))
            .collect()
    };
    let err = |e: &dyn std::fmt::Display| e.to_string();

    let mut chart = ChartBuilder::on(&left)
        .caption("fan-out throughput (W=4)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((cmin..cmax).log_scale(), 0f64..rmax.max(0.1))
        .map_err(|e| err(&e))?;
    let lines = Target::ALL.map(|t| (t, series(t, |s| s.deliveries_per_s / 1e6)));
    draw_panel(&mut chart, "deliveries/s (millions)", &lines, None)?;

    // Latency spans orders of magnitude across C: log scale.
    let pmin = closed.iter().map(|s| s.p99_us).fold(f64::MAX, f64::min) / 1000.0;
    let mut chart = ChartBuilder::on(&right)
        .caption("p99 latency (W=4)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (cmin..cmax).log_scale(),
            ((pmin / 2.0).max(0.001)..pmax.max(0.01) * 2.0).log_scale(),
        )
        .map_err(|e| err(&e))?;
    let lines = Target::ALL.map(|t| (t, series(t, |s| s.p99_us / 1000.0)));
    draw_panel(
        &mut chart,
        "p99 (ms, log scale)",
        &lines,
        Some(SeriesLabelPosition::UpperLeft),
    )?;
    root.present().map_err(|e| e.to_string())
}

/// A target's colour in the plot.
fn colour(t: Target) -> RGBColor {
    match t {
        Target::Natter => RGBColor(200, 60, 40),
        Target::NatterTls => RGBColor(230, 150, 30),
        Target::Baseline => RGBColor(40, 90, 200),
        Target::Bridge => RGBColor(40, 150, 70),
        Target::Irc => RGBColor(150, 60, 170),
        Target::Inspircd => RGBColor(120, 120, 120),
        Target::NatterStore => RGBColor(230, 150, 30),
        Target::NatterAccounts => RGBColor(30, 170, 170),
        Target::NatterMetrics => RGBColor(200, 60, 200),
        Target::NatterAll => RGBColor(120, 120, 120),
        Target::NatterCluster => RGBColor(90, 60, 20),
    }
}

/// One panel's mesh, a line with points per target that has any, and the legend.
fn draw_panel<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    y_desc: &str,
    lines: &[(Target, Vec<(f64, f64)>)],
    legend_at: Option<SeriesLabelPosition>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    chart
        .configure_mesh()
        .x_desc("clients in the room (C)")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| err(&e))?;
    for (t, pts) in lines {
        if pts.is_empty() {
            continue;
        }
        let c = colour(*t);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(t.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .map_err(|e| err(&e))?;
    }
    let mut labels = chart.configure_series_labels();
    if let Some(at) = legend_at {
        labels.position(at);
    }
    labels
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))
}

/// What one idle run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleFigures {
    /// Server kind.
    pub target: Target,
    /// Connections.
    pub conns: u32,
    /// Members per room.
    pub room_size: u32,
    /// Server RSS before connecting, bytes.
    pub rss_before: u64,
    /// Server RSS with every connection open and idle, bytes.
    pub rss_held: u64,
    /// (held − before) / conns.
    pub bytes_per_conn: f64,
    /// The same for anonymous memory only (RssAnon): without the binary's code pages that
    /// the first connections page in, which are not per connection and vary from run to run.
    pub anon_bytes_per_conn: f64,
    /// Server RssAnon with every connection open and idle, bytes: the whole process's, so that
    /// memory a build holds from the start (an allocator's arenas) shows beside the growth the
    /// per-connection figures divide (bench/README.md, "Eighth session").
    pub anon_held: u64,
    /// Connecting (and joining) all of them, seconds.
    pub connect_secs: f64,
    /// Bridge runs (where the figures above are the bridge's): natter-server's bytes per
    /// connection behind it.
    pub server_bytes_per_conn: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(target: Target, clients: u32, mdeliv: f64, p99_ms: f64) -> Summary {
        Summary {
            target,
            clients,
            messages: 10,
            window: 4,
            rate: None,
            runs: 1,
            clean_runs: 1,
            deliveries_per_s: mdeliv * 1e6,
            p50_us: p99_ms * 500.0,
            p99_us: p99_ms * 1000.0,
            max_us: p99_ms * 2000.0,
            server_cpu: 0.9,
            gen_cpu: 0.5,
            gen_cpu_max: 0.5,
            server_peak_rss: 1 << 20,
            deliveries_per_cpu_s: mdeliv * 1e6 / 0.9,
            bridge_cpu_ratio: None,
            gen_saturated: false,
        }
    }

    #[test]
    fn per_cpu_table_compares_each_target_with_the_baseline_of_its_c() {
        let mut natter = summary(Target::Natter, 3000, 0.75, 40.0);
        natter.deliveries_per_cpu_s = 1.5e6;
        let mut base = summary(Target::Baseline, 3000, 0.75, 50.0);
        base.deliveries_per_cpu_s = 1.0e6;
        let table = per_cpu_table(&[natter, base]);
        assert!(table.contains("1.50 x base"), "{table}");
        assert!(table.contains("0.80 x base"), "{table}");
    }

    #[test]
    fn the_plot_has_both_panels_with_a_line_per_target() {
        let dir = std::env::temp_dir().join(format!("natter-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let svg = dir.join("plot.svg");
        let sums = [
            summary(Target::Natter, 10, 2.0, 0.3),
            summary(Target::Natter, 50, 9.0, 1.4),
            summary(Target::Baseline, 10, 3.0, 0.2),
            summary(Target::Baseline, 50, 10.0, 1.2),
        ];
        plot(&svg, &sums).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for caption in [
            "fan-out throughput",
            "p99 latency",
            "deliveries/s (millions)",
            "p99 (ms, log scale)",
        ] {
            assert!(text.contains(caption), "no {caption:?} in the plot");
        }
        // Two panels, each with one line (in the target's colour) and one legend entry per
        // target that has data: natter and the baseline, no bridge.
        let line = |t: Target| {
            let c = colour(t);
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            let needle = format!("stroke=\"{hex}\" stroke-width=\"2\"");
            text.matches(needle.as_str()).count()
        };
        assert_eq!(line(Target::Natter), 2, "natter lines");
        assert_eq!(line(Target::Baseline), 2, "baseline lines");
        assert_eq!(line(Target::Bridge), 0, "no bridge line");
        let legend = |name: &str| text.lines().filter(|l| l.trim() == name).count();
        assert_eq!((legend("natter"), legend("baseline")), (2, 2));
    }
}
