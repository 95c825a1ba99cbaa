//! Drawing the [`View`] into a ratatui frame: the layout, line wrapping, timestamps and nick
//! colours. Pure functions of the view, so they are tested against ratatui's `TestBackend`.
//!
//! ```text
//! ┌ topic line ─────────────────────────────────────────────┐
//! │ rooms    │ messages (newest at the bottom)   │ members   │
//! ├ status line (connection, nick, room) ───────────────────┤
//! └ > input line ───────────────────────────────────────────┘
//! ```

use super::input::InputLine;
use super::view::{Line, LineKind, View};
use crate::clock::hh_mm;
use natter_core::session::ConnState;
use natter_core::{Millis, Nick};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::Paragraph;
use std::collections::VecDeque;
use unicode_width::UnicodeWidthChar;

/// Width of the room list, when the terminal is wide enough for it.
const ROOMS_WIDTH: u16 = 18;
/// Width of the member list, when the terminal is wide enough for it.
const MEMBERS_WIDTH: u16 = 18;
/// Narrower than this, the room list is hidden.
const ROOMS_MIN_TOTAL: u16 = 50;
/// Narrower than this, the member list is hidden.
const MEMBERS_MIN_TOTAL: u16 = 80;

/// Columns of the `HH:MM ` stamp in front of every line (continuation rows indent as far).
const STAMP_WIDTH: usize = 6;

/// Colours nicks are drawn in (chosen by a stable hash of the nick).
const NICK_COLOURS: [Color; 12] = [
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Topic line.
    pub topic: Rect,
    /// Room list (absent on narrow terminals).
    pub rooms: Option<Rect>,
    /// Message pane.
    pub messages: Rect,
    /// Member list (absent on narrow terminals).
    pub members: Option<Rect>,
    /// Status line.
    pub status: Rect,
    /// Input line.
    pub input: Rect,
}

/// Splits the screen.
pub fn layout(area: Rect) -> Areas {
    let row = |y: u16, h: u16| Rect::new(area.x, y, area.width, h);
    let body_h = area.height.saturating_sub(3);
    let topic = row(area.y, area.height.min(1));
    let body = row(area.y.saturating_add(1), body_h);
    let status = row(body.bottom(), area.height.saturating_sub(1).min(1));
    let input = row(status.bottom(), area.height.saturating_sub(2).min(1));
    let rooms_w = if area.width >= ROOMS_MIN_TOTAL {
        ROOMS_WIDTH
    } else {
        0
    };
    let members_w = if area.width >= MEMBERS_MIN_TOTAL {
        MEMBERS_WIDTH
    } else {
        0
    };
    let messages_w = area.width.saturating_sub(rooms_w + members_w);
    let col = |x: u16, w: u16| (w > 0).then(|| Rect::new(x, body.y, w, body.height));
    Areas {
        topic,
        rooms: col(body.x, rooms_w),
        messages: Rect::new(body.x + rooms_w, body.y, messages_w, body.height),
        members: col(body.x + rooms_w + messages_w, members_w),
        status,
        input,
    }
}

/// A nick's colour: the same nick always gets the same colour (case-insensitively).
pub fn nick_colour(nick: &Nick) -> Color {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in nick.folded().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    NICK_COLOURS[h as usize % NICK_COLOURS.len()]
}

/// A styled piece of text, before wrapping.
type Segment = (String, Style);

/// The segments of one buffer line, timestamp first.
pub fn line_segments(line: &Line, tz_offset: i32) -> Vec<Segment> {
    let dim = Style::new().fg(Color::DarkGray);
    let mut out = vec![(format!("{} ", hh_mm(line.at, tz_offset)), dim)];
    let nick_style = |n: &Nick| Style::new().fg(nick_colour(n)).add_modifier(Modifier::BOLD);
    match &line.kind {
        LineKind::Say { nick, text } => {
            out.push(("<".into(), Style::new()));
            out.push((nick.to_string(), nick_style(nick)));
            out.push(("> ".into(), Style::new()));
            out.push((text.clone(), Style::new()));
        }
        LineKind::Act { nick, text } => {
            out.push(("* ".into(), nick_style(nick)));
            out.push((nick.to_string(), nick_style(nick)));
            out.push((
                format!(" {text}"),
                Style::new().add_modifier(Modifier::ITALIC),
            ));
        }
        LineKind::Direct {
            peer,
            outgoing,
            text,
        } => {
            let dm = Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD);
            let head = if *outgoing {
                format!("-> *{peer}* ")
            } else {
                format!("*{peer}* ")
            };
            out.push((head, dm));
            out.push((text.clone(), Style::new()));
        }
        LineKind::Notice(t) => out.push((t.clone(), Style::new().fg(Color::Cyan))),
        LineKind::Error(t) => out.push((
            format!("error: {t}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
        LineKind::Gap(t) => out.push((
            format!("~~~ {t} ~~~"),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
    }
    out
}

/// The segments of a line we typed that the server has not acknowledged yet: shaped like the
/// line it becomes once sent, dimmed, with a `(sending)` tag. The only place that decides how a
/// pending line looks.
pub fn pending_segments(line: &Line, tz_offset: i32) -> Vec<Segment> {
    let dim = |st: Style| {
        st.fg(Color::DarkGray)
            .remove_modifier(Modifier::BOLD)
            .add_modifier(Modifier::DIM)
    };
    let mut out: Vec<Segment> = line_segments(line, tz_offset)
        .into_iter()
        .map(|(s, st)| (s, dim(st)))
        .collect();
    out.push((
        " (sending)".into(),
        dim(Style::new().add_modifier(Modifier::ITALIC)),
    ));
    out
}

/// Wraps segments into rows of at most `width` columns, breaking after a space where it can
/// and inside a word where it must. Continuation rows start with `indent` blank columns (at most
/// half the width), so wrapped text lines up after the timestamp. Styles carry over the breaks.
pub fn wrap(segments: &[Segment], width: usize, indent: usize) -> Vec<Vec<Segment>> {
    let width = width.max(1);
    let indent = indent.min(width / 2);
    let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
    // Where the current row's own text starts (after the indent of a continuation row): a
    // break is never made inside the indent, so every break makes progress.
    let mut row_start = 0usize;
    let mut row_w = 0usize;
    let cw = |c: char| c.width().unwrap_or(0);
    for (text, style) in segments {
        for c in text.chars() {
            let w = cw(c);
            if row_w + w > width {
                let mut next = vec![(' ', Style::new()); indent];
                if c != ' '
                    && let Some(row) = rows.last_mut()
                    && let Some(sp) = row.iter().rposition(|(ch, _)| *ch == ' ')
                    && sp >= row_start
                    && sp + 1 < row.len()
                {
                    next.extend(row.split_off(sp + 1));
                }
                row_w = next.iter().map(|(ch, _)| cw(*ch)).sum();
                row_start = indent;
                rows.push(next);
                if c == ' ' {
                    // A break eats the space it happens at.
                    continue;
                }
            }
            if let Some(row) = rows.last_mut() {
                row.push((c, *style));
            }
            row_w += w;
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut segs: Vec<Segment> = Vec::new();
            for (c, style) in row {
                match segs.last_mut() {
                    Some((s, st)) if *st == style => s.push(c),
                    _ => segs.push((c.to_string(), style)),
                }
            }
            segs
        })
        .collect()
}

fn text_line(segs: Vec<Segment>) -> TextLine<'static> {
    TextLine::from(
        segs.into_iter()
            .map(|(s, st)| Span::styled(s, st))
            .collect::<Vec<_>>(),
    )
}

/// The rows the message pane shows for the shown buffer, its pending lines after its real ones:
/// at most `height`, the newest at the bottom, `scroll` rows up from the end (clamped). Also
/// returns the clamped scroll.
pub fn message_rows(
    view: &View,
    width: usize,
    height: usize,
    tz_offset: i32,
) -> (Vec<Vec<Segment>>, usize) {
    let buffer = view.shown();
    let want = height.saturating_add(buffer.scroll);
    let mut rows: VecDeque<Vec<Segment>> = VecDeque::new();
    // Newest first.
    let pending = view
        .pending_shown()
        .rev()
        .map(|l| pending_segments(l, tz_offset));
    let sent = buffer
        .lines()
        .iter()
        .rev()
        .map(|l| line_segments(l, tz_offset));
    for segments in pending.chain(sent) {
        for row in wrap(&segments, width, STAMP_WIDTH).into_iter().rev() {
            rows.push_front(row);
        }
        if rows.len() >= want {
            break;
        }
    }
    let scroll = buffer.scroll.min(rows.len().saturating_sub(height));
    let end = rows.len() - scroll;
    let start = end.saturating_sub(height);
    (
        rows.into_iter().skip(start).take(end - start).collect(),
        scroll,
    )
}

/// The status line's text for `state` at `now`.
pub fn state_text(state: ConnState, now: Millis) -> String {
    match state {
        ConnState::Connecting => "Connecting".into(),
        ConnState::Connected => "Connected".into(),
        ConnState::Reconnecting { at, attempt } => {
            let secs = at.since(now).0.div_ceil(1000);
            format!("Reconnecting in {secs}s (attempt {attempt})")
        }
        ConnState::Closed => "Disconnected".into(),
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, view: &View, input: &InputLine, now: Millis, tz_offset: i32) {
    let areas = layout(frame.area());
    let bar = Style::new().fg(Color::White).bg(Color::Blue);

    // Topic.
    let current = view.current();
    let topic = match (current, &view.shown().topic) {
        (Some(r), Some(t)) => format!(" {r}: {t}"),
        (Some(r), None) => format!(" {r}"),
        (None, _) => " natter: /join #room to start".into(),
    };
    frame.render_widget(Paragraph::new(topic).style(bar), areas.topic);

    // Rooms.
    if let Some(area) = areas.rooms {
        let rows: Vec<TextLine> = view
            .room_list()
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut spans = vec![Span::raw(format!("{} {}", i + 1, e.room))];
                if e.unread > 0 {
                    spans.push(Span::styled(
                        format!(" ({})", e.unread),
                        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                    ));
                }
                let line = TextLine::from(spans);
                if e.current {
                    line.style(Style::new().add_modifier(Modifier::REVERSED))
                } else {
                    line
                }
            })
            .collect();
        let inner = Rect::new(area.x, area.y, area.width.saturating_sub(1), area.height);
        frame.render_widget(Paragraph::new(rows), inner);
        draw_rule(frame, area.right().saturating_sub(1), area);
    }

    // Messages, bottom-aligned.
    let width = usize::from(areas.messages.width.saturating_sub(1)).max(1);
    let height = usize::from(areas.messages.height);
    let (rows, scroll) = message_rows(view, width, height, tz_offset);
    let n = u16::try_from(rows.len()).unwrap_or(u16::MAX);
    let msg_area = Rect::new(
        areas.messages.x + 1,
        areas.messages.bottom().saturating_sub(n),
        areas.messages.width.saturating_sub(1),
        n.min(areas.messages.height),
    );
    let lines: Vec<TextLine> = rows.into_iter().map(text_line).collect();
    frame.render_widget(Paragraph::new(lines), msg_area);

    // Members.
    if let Some(area) = areas.members {
        draw_rule(frame, area.x, area);
        let members = view.shown().members();
        let mut rows = vec![TextLine::styled(
            format!("{} here", members.len()),
            Style::new().add_modifier(Modifier::BOLD),
        )];
        rows.extend(
            members
                .iter()
                .take(usize::from(area.height))
                .map(|n| TextLine::styled(n.to_string(), Style::new().fg(nick_colour(n)))),
        );
        let inner = Rect::new(
            area.x + 1,
            area.y,
            area.width.saturating_sub(1),
            area.height,
        );
        frame.render_widget(Paragraph::new(rows), inner);
    }

    // Status.
    let mut status = match view.status() {
        Some(s) => format!(" [{}] {}", state_text(s.state, now), s.nick),
        None => " [Connecting]".to_owned(),
    };
    if let Some(r) = current {
        status.push_str(&format!(" │ {r}"));
    }
    if scroll > 0 {
        status.push_str(&format!(" │ scrolled up {scroll} (PgDn)"));
    }
    frame.render_widget(Paragraph::new(status).style(bar), areas.status);

    // Input.
    let prompt = "> ";
    let avail = usize::from(areas.input.width).saturating_sub(prompt.len());
    let (shown, cursor_col) = input.visible(avail);
    frame.render_widget(Paragraph::new(format!("{prompt}{shown}")), areas.input);
    let x = areas.input.x + u16::try_from(prompt.len() + cursor_col).unwrap_or(u16::MAX);
    frame.set_cursor_position(Position::new(
        x.min(areas.input.right().saturating_sub(1)),
        areas.input.y,
    ));
}

fn draw_rule(frame: &mut Frame, x: u16, area: Rect) {
    let rule: Vec<TextLine> = (0..area.height).map(|_| TextLine::raw("│")).collect();
    frame.render_widget(
        Paragraph::new(rule).style(Style::new().fg(Color::DarkGray)),
        Rect::new(x, area.y, 1, area.height),
    );
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::{joined, nick, queued, room, room_ev, say, settled, status};
    use super::*;
    use crate::driver::Update;
    use natter_core::Seq;
    use natter_core::session::Event;
    use natter_core::wire::EventKind;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(view: &View, input: &InputLine, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, view, input, Millis(0), 0)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect()
    }

    fn plain(rows: &[Vec<Segment>]) -> Vec<String> {
        rows.iter()
            .map(|r| r.iter().map(|(s, _)| s.as_str()).collect())
            .collect()
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_keeps_styles() {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let segs = vec![
            ("<bob> ".to_owned(), bold),
            ("the quick brown fox".to_owned(), Style::new()),
        ];
        let rows = wrap(&segs, 12, 0);
        assert_eq!(plain(&rows), ["<bob> the ", "quick brown ", "fox"]);
        // Continuation rows are indented.
        let rows = wrap(&segs, 12, 2);
        assert_eq!(plain(&rows), ["<bob> the ", "  quick ", "  brown fox"]);
        assert_eq!(rows[0][0], ("<bob> ".to_owned(), bold));
        // A word longer than the width is cut.
        let rows = wrap(&[("abcdefghij".to_owned(), Style::new())], 4, 0);
        assert_eq!(plain(&rows), ["abcd", "efgh", "ij"]);
        let rows = wrap(&[("abcdefghij".to_owned(), Style::new())], 4, 2);
        assert_eq!(plain(&rows), ["abcd", "  ef", "  gh", "  ij"]);
        // Wide characters count double.
        let rows = wrap(&[("日本語です".to_owned(), Style::new())], 4, 0);
        assert_eq!(plain(&rows), ["日本", "語で", "す"]);
        // Every row fits.
        for (w, indent) in (1..30).flat_map(|w| [(w, 0), (w, 6)]) {
            for row in wrap(&segs, w, indent) {
                let width: usize = row
                    .iter()
                    .flat_map(|(s, _)| s.chars())
                    .map(|c| c.width().unwrap_or(0))
                    .sum();
                assert!(width <= w, "{row:?} wider than {w}");
            }
        }
    }

    #[test]
    fn layout_gives_every_part_a_place() {
        let a = layout(Rect::new(0, 0, 100, 30));
        assert_eq!(a.topic, Rect::new(0, 0, 100, 1));
        assert_eq!(a.status, Rect::new(0, 28, 100, 1));
        assert_eq!(a.input, Rect::new(0, 29, 100, 1));
        assert_eq!(a.rooms, Some(Rect::new(0, 1, ROOMS_WIDTH, 27)));
        assert_eq!(
            a.messages,
            Rect::new(ROOMS_WIDTH, 1, 100 - ROOMS_WIDTH - MEMBERS_WIDTH, 27)
        );
        assert_eq!(
            a.members,
            Some(Rect::new(100 - MEMBERS_WIDTH, 1, MEMBERS_WIDTH, 27))
        );
        let narrow = layout(Rect::new(0, 0, 40, 10));
        assert_eq!((narrow.rooms, narrow.members), (None, None));
        assert_eq!(narrow.messages.width, 40);
        // Tiny terminals do not panic.
        for (w, h) in [(0, 0), (1, 1), (3, 2), (10, 3)] {
            let _ = layout(Rect::new(0, 0, w, h));
            let v = View::new(nick("me"));
            let _ = screen(&v, &InputLine::new(), w.max(1), h.max(1));
        }
    }

    #[test]
    fn the_screen_shows_rooms_messages_members_and_input() {
        let mut v = View::new(nick("me"));
        v.apply(&status("#lobby", &["#lobby", "#rust"]), Millis(0));
        v.apply(&joined("#lobby", &["me", "bob"]), Millis(0));
        v.apply(&say("#lobby", "bob", "hello there"), Millis(0));
        v.apply(&say("#rust", "ann", "psst"), Millis(0));
        v.apply(&say("#rust", "ann", "again"), Millis(0));
        let mut input = InputLine::new();
        input.paste("typing");
        let s = screen(&v, &input, 100, 12);
        assert!(s[0].contains("#lobby"), "topic: {:?}", s[0]);
        assert!(s[1].starts_with("1 #lobby"), "{:?}", s[1]);
        assert!(s[2].starts_with("2 #rust (2)"), "{:?}", s[2]);
        assert!(s[1].contains("2 here"));
        assert!(s.iter().any(|l| l.contains("│bob")));
        // The newest message is on the last row of the pane, with its time.
        assert!(s[9].contains("22:13 <bob> hello there"), "{:?}", s[9]);
        assert!(s[10].contains("[Connected] me │ #lobby"), "{:?}", s[10]);
        assert!(s[11].starts_with("> typing"));
    }

    #[test]
    fn long_messages_wrap_in_the_pane_and_scroll() {
        let mut v = View::new(nick("me"));
        v.apply(&status("#a", &["#a"]), Millis(0));
        for i in 0..20 {
            v.apply(&say("#a", "bob", &format!("message number {i}")), Millis(0));
        }
        v.apply(&say("#a", "bob", &"word ".repeat(20)), Millis(0));
        let long_rows = wrap(
            &line_segments(v.shown().lines().back().unwrap(), 0),
            39,
            STAMP_WIDTH,
        )
        .len();
        assert!(long_rows >= 3, "{long_rows}");
        let (rows, _) = message_rows(&v, 39, 5, 0);
        let rows = plain(&rows);
        assert_eq!(rows.len(), 5);
        let first_long = 5 - long_rows;
        assert!(
            rows[first_long - 1].contains("message number 19"),
            "{rows:?}"
        );
        assert!(
            rows[first_long].starts_with("22:13 <bob> word word"),
            "{rows:?}"
        );
        assert!(rows[4].trim_end().ends_with("word"));
        assert!(rows.iter().all(|r| r.chars().count() <= 39));
        v.scroll_up(long_rows);
        let (rows, scroll) = message_rows(&v, 39, 5, 0);
        assert_eq!(scroll, long_rows);
        assert!(plain(&rows)[4].contains("message number 19"));
        v.scroll_up(10_000);
        let (rows, scroll) = message_rows(&v, 39, 5, 0);
        assert!(
            plain(&rows)[0].contains("message number 0"),
            "{:?}",
            plain(&rows)
        );
        assert_eq!(scroll, 20 + long_rows - 5);
        v.scroll_down(10_000);
        assert_eq!(message_rows(&v, 39, 5, 0).1, 0);
    }

    #[test]
    fn status_line_counts_down_a_reconnect() {
        let s = ConnState::Reconnecting {
            at: Millis(10_500),
            attempt: 2,
        };
        assert_eq!(
            state_text(s, Millis(8_000)),
            "Reconnecting in 3s (attempt 2)"
        );
        assert_eq!(
            state_text(s, Millis(20_000)),
            "Reconnecting in 0s (attempt 2)"
        );
    }

    #[test]
    fn gaps_and_reconnects_are_visible() {
        let mut v = View::new(nick("me"));
        v.apply(&status("#a", &["#a"]), Millis(0));
        v.apply(&say("#a", "bob", "before"), Millis(0));
        v.apply(
            &Update::Event(Event::Gap {
                room: room("#a"),
                first: Seq(3),
                last: Seq(7),
            }),
            Millis(0),
        );
        v.apply(&say("#a", "bob", "after"), Millis(0));
        let mut reconnecting = match status("#a", &["#a"]) {
            Update::Status(s) => s,
            Update::Event(_) => unreachable!(),
        };
        reconnecting.state = ConnState::Reconnecting {
            at: Millis(4_000),
            attempt: 1,
        };
        v.apply(&Update::Status(reconnecting), Millis(0));
        let s = screen(&v, &InputLine::new(), 100, 8);
        let at = |text: &str| s.iter().position(|l| l.contains(text));
        let gap = at("~~~ -- 5 messages missed here (#a #3..#7) ~~~").expect("gap marker shown");
        assert!(at("<bob> before").unwrap() < gap && gap < at("<bob> after").unwrap());
        assert!(
            s[6].contains("[Reconnecting in 4s (attempt 1)] me"),
            "{:?}",
            s[6]
        );
    }

    #[test]
    fn nick_colours_are_stable_and_case_blind() {
        assert_eq!(nick_colour(&nick("Alice")), nick_colour(&nick("alice")));
        let colours: std::collections::HashSet<_> = ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .map(|n| format!("{:?}", nick_colour(&nick(n))))
            .collect();
        assert!(colours.len() > 2, "nicks should not all share a colour");
    }

    #[test]
    fn joins_show_in_the_member_pane() {
        let mut v = View::new(nick("me"));
        v.apply(&status("#a", &["#a"]), Millis(0));
        v.apply(&joined("#a", &["me"]), Millis(0));
        let before = screen(&v, &InputLine::new(), 100, 8);
        assert!(!before.iter().any(|l| l.contains("│newbie")));
        v.apply(&room_ev("#a", "newbie", EventKind::Join), Millis(0));
        let after = screen(&v, &InputLine::new(), 100, 8);
        assert!(after.iter().any(|l| l.contains("│newbie")), "{after:#?}");
        assert!(after[1].contains("2 here"));
        assert!(after.iter().any(|l| l.contains("-- newbie joined #a")));
    }

    #[test]
    fn pending_lines_show_dimmed_after_the_real_ones_until_settled() {
        use natter_core::session::Target;
        let mut v = View::new(nick("me"));
        v.apply(&status("#a", &["#a"]), Millis(0));
        v.apply(
            &queued(1, Target::Room(room("#a")), false, "hello"),
            Millis(0),
        );
        v.apply(
            &queued(2, Target::Room(room("#a")), true, "waves"),
            Millis(0),
        );
        v.apply(
            &queued(3, Target::Nick(nick("bob")), false, "psst"),
            Millis(0),
        );
        // Arrives after the lines were typed, yet shows above them.
        v.apply(&say("#a", "bob", "live"), Millis(0));
        let (rows, _) = message_rows(&v, 60, 10, 0);
        assert_eq!(
            plain(&rows)
                .iter()
                .map(|r| r.trim_end())
                .collect::<Vec<_>>(),
            [
                "22:13 <bob> live",
                "00:00 <me> hello (sending)",
                "00:00 * me waves (sending)",
                "00:00 -> *bob* psst (sending)",
            ]
        );
        // Every part of a pending line is dim; the sent line is not.
        for row in &rows[1..] {
            assert!(
                row.iter().all(|(_, st)| st.fg == Some(Color::DarkGray)
                    && st.add_modifier.contains(Modifier::DIM)
                    && !st.add_modifier.contains(Modifier::BOLD)),
                "{row:?}"
            );
        }
        assert!(rows[0].iter().any(|(_, st)| st.fg != Some(Color::DarkGray)));

        // The echo arrives, then the settlement: one normal line, no tag.
        v.apply(&say("#a", "me", "hello"), Millis(0));
        v.apply(&settled(1, true), Millis(0));
        let s = screen(&v, &InputLine::new(), 100, 8);
        assert_eq!(s.iter().filter(|l| l.contains("<me> hello")).count(), 1);
        assert!(!s.iter().any(|l| l.contains("hello (sending)")), "{s:#?}");
        assert!(
            s.iter().any(|l| l.contains("* me waves (sending)")),
            "{s:#?}"
        );
    }
}
