//! Drawing natter-core's chat model into a ratatui frame: the layout, line wrapping, timestamps,
//! nick colours and mention highlights, what the top of a room says about older lines, and a
//! search's results in place of the conversation. Pure functions of the model and the view
//! state, so they are tested against ratatui's `TestBackend`.
//!
//! ```text
//! ┌ topic line ─────────────────────────────────────────────┐
//! │ conversations │ messages (newest at the bottom) │ members│
//! ├ status line (connection, nick, conversation) ───────────┤
//! └ > input line ───────────────────────────────────────────┘
//! ```

use super::input::InputLine;
use super::view::View;
use crate::clock::{hh_mm, local_minute};
use natter_core::chat::{
    Chat, Conv, ConvId, Hit, Line, LineKind, Outgoing, Role, Scrollback, Search, mention_spans,
};
use natter_core::render;
use natter_core::session::ConnState;
use natter_core::{Millis, Nick};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::Paragraph;
use std::collections::VecDeque;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Width of the conversation list, when the terminal is wide enough for it.
const ROOMS_WIDTH: u16 = 18;
/// Width of the member list, when the terminal is wide enough for it.
const MEMBERS_WIDTH: u16 = 18;
/// Narrower than this, the conversation list is hidden.
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

/// How a mention of our nick stands out in a line.
pub const MENTION: Style = Style::new()
    .fg(Color::Black)
    .bg(Color::Yellow)
    .add_modifier(Modifier::BOLD);

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Topic line.
    pub topic: Rect,
    /// Conversation list (absent on narrow terminals).
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

/// Chat text as segments, the mentions of `me` highlighted when the line is a mention.
fn text_segments(text: &str, me: &Nick, mention: bool, base: Style) -> Vec<Segment> {
    if !mention {
        return vec![(text.to_owned(), base)];
    }
    let mut out = Vec::new();
    let mut at = 0;
    for span in mention_spans(text, me) {
        if span.start > at {
            out.push((text[at..span.start].to_owned(), base));
        }
        out.push((text[span.clone()].to_owned(), MENTION));
        at = span.end;
    }
    if at < text.len() || out.is_empty() {
        out.push((text[at..].to_owned(), base));
    }
    out
}

/// The segments of one line, timestamp first, as seen by `me`.
pub fn line_segments(line: &Line, me: &Nick, tz_offset: i32) -> Vec<Segment> {
    let dim = Style::new().fg(Color::DarkGray);
    let mut out = vec![(format!("{} ", hh_mm(line.at, tz_offset)), dim)];
    let nick_style = |n: &Nick| Style::new().fg(nick_colour(n)).add_modifier(Modifier::BOLD);
    let notice = Style::new().fg(Color::Cyan);
    match &line.kind {
        LineKind::Say { from, text } => {
            out.push(("<".into(), Style::new()));
            out.push((from.to_string(), nick_style(from)));
            out.push(("> ".into(), Style::new()));
            out.extend(text_segments(text.as_str(), me, line.mention, Style::new()));
        }
        LineKind::Act { from, text } => {
            let italic = Style::new().add_modifier(Modifier::ITALIC);
            out.push(("* ".into(), nick_style(from)));
            out.push((from.to_string(), nick_style(from)));
            out.push((" ".into(), italic));
            out.extend(text_segments(text.as_str(), me, line.mention, italic));
        }
        LineKind::UserNotice { from, text } => {
            // `-alice- text`, IRC's way of showing a notice, in the notice colour.
            out.push(("-".into(), notice));
            out.push((from.to_string(), nick_style(from)));
            out.push(("- ".into(), notice));
            out.extend(text_segments(text.as_str(), me, line.mention, notice));
        }
        // A direct message typed in another conversation (`Chat::sent_elsewhere`): in line
        // mode's words for one sent, as README says and the page shows it, not after a
        // notice's dashes (`-- -> *bob* hi`).
        LineKind::Notice(words) if is_sent_elsewhere(words) => {
            out.push((words.clone(), notice));
        }
        LineKind::Event { words, .. } | LineKind::Notice(words) | LineKind::Rooms { words, .. } => {
            out.push((format!("-- {words}"), notice));
        }
        LineKind::Error(words) => out.push((
            format!("error: {words}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
        LineKind::Gap { words, .. } => out.push((
            format!("~~~ {words} ~~~"),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
    }
    if let Some(why) = &line.failed {
        out.push((
            format!(" (not delivered: {why})"),
            Style::new().fg(Color::Red).add_modifier(Modifier::ITALIC),
        ));
    }
    out
}

/// Whether a notice's words are [`Chat::sent_elsewhere`]'s (`-> *bob* hi`, `-> -bob- hi`).
fn is_sent_elsewhere(words: &str) -> bool {
    let to = |mark: &str| {
        words
            .strip_prefix("-> ")
            .and_then(|rest| rest.strip_prefix(mark))
            .and_then(|rest| rest.split_once(&format!("{mark} ")))
            .is_some_and(|(to, _)| Nick::new(to).is_ok())
    };
    to("*") || to("-")
}

/// The segments of a line we typed that the server has not acknowledged yet: shaped like the
/// line it becomes once sent; when the model says it looks pending (offline, or waiting
/// noticeably long), dimmed with a `(sending)` tag.
pub fn outgoing_segments(o: &Outgoing, me: &Nick, tz_offset: i32) -> Vec<Segment> {
    let segments = line_segments(&o.line, me, tz_offset);
    if !o.looks_pending {
        return segments;
    }
    let dim = |st: Style| {
        st.fg(Color::DarkGray)
            .remove_modifier(Modifier::BOLD)
            .add_modifier(Modifier::DIM)
    };
    let mut out: Vec<Segment> = segments.into_iter().map(|(s, st)| (s, dim(st))).collect();
    out.push((
        " (sending)".into(),
        dim(Style::new().add_modifier(Modifier::ITALIC)),
    ));
    out
}

/// How many columns a glyph ([`glyphs`]) takes on a terminal, as ratatui's buffer counts it.
pub fn cols(grapheme: &str) -> usize {
    grapheme.width()
}

/// Columns `text` takes, drawn as its [`glyphs`].
pub fn drawn_cols(text: &str) -> usize {
    glyphs(text).map(cols).sum()
}

/// Whether `c` only joins or dresses an emoji: the zero width joiner, a variation selector, a
/// skin-tone modifier, a tag (a subdivision flag's).
fn emoji_dressing(c: char) -> bool {
    matches!(c, '\u{200d}' | '\u{fe0e}' | '\u{fe0f}' | '\u{1f3fb}'..='\u{1f3ff}' | '\u{e0020}'..='\u{e007f}')
}

/// The glyphs `text` is drawn as: its grapheme clusters, except that an emoji sequence (a
/// family joined by zero width joiners, a skin tone, an emoji with a variation selector) is
/// drawn as the emoji it is made of, without what joins or dresses them (`👨‍👩‍👧` as `👨👩👧`,
/// `👍🏽` as `👍`; a variation selector is dropped from any emoji, `↔️` drawn as `↔`). Terminals
/// do not agree on such a sequence's width: xterm, Alacritty and older
/// VTE count each character (the family 6 columns), kitty, WezTerm, iTerm2 and Windows
/// Terminal one glyph (2), and tmux 3.3 either (a family 2, a skin tone 4, `❤️` 1). Drawn as
/// 2 where the terminal took more, the line's layout shifted (the rest of the row moved right
/// or was overwritten). Lone emoji are as wide on every terminal. Flags (regional indicator
/// pairs) are 2 columns everywhere and stay whole, as does text in any other script.
pub fn glyphs(text: &str) -> impl Iterator<Item = &str> {
    // No allocation per cluster: this runs for every grapheme of every line wrapped.
    text.graphemes(true).flat_map(|g| {
        let emoji = g
            .chars()
            .any(|c| c >= '\u{1f000}' || ('\u{2600}'..='\u{27bf}').contains(&c));
        // A variation selector only chooses a presentation, of any emoji (`↔️`, `©️`, a
        // keycap): dropped from any cluster. What joins or dresses emoji, from emoji only
        // (a zero width joiner in Devanagari is kept).
        let dropped =
            move |c: char| matches!(c, '\u{fe0e}' | '\u{fe0f}') || (emoji && emoji_dressing(c));
        let sequence = g.chars().nth(1).is_some() && g.chars().any(dropped);
        // Nothing but dressing (two skin tones in a row, a skin tone and a joiner): its first
        // character, which is drawn alone as it is (a skin tone's swatch), not nothing.
        let bare = sequence && g.chars().all(dropped);
        let whole = std::iter::once(g).filter(move |_| !sequence);
        let pieces = if sequence { g } else { "" }
            .char_indices()
            .filter(move |(i, c)| !dropped(*c) || (bare && *i == 0))
            .map(move |(i, c)| &g[i..i + c.len_utf8()]);
        whole.chain(pieces)
    })
}

/// Wraps segments into rows of at most `width` columns, breaking after a space where it can
/// and inside a word where it must; CJK text (wide characters), which has no spaces between
/// its words, breaks between any two of its characters, so it fills the row it starts on. Continuation rows start with `indent` blank columns (at most
/// half the width), so wrapped text lines up after the timestamp. Styles carry over the breaks.
/// Measured by the glyphs drawn ([`glyphs`], [`cols`]), never inside a grapheme cluster, so
/// text is never split where a terminal would join it.
pub fn wrap(segments: &[Segment], width: usize, indent: usize) -> Vec<Vec<Segment>> {
    let width = width.max(1);
    let indent = indent.min(width / 2);
    let mut rows: Vec<Vec<(&str, Style)>> = vec![Vec::new()];
    // Where the current row's own text starts (after the indent of a continuation row): a
    // break is never made inside the indent, so every break makes progress.
    let mut row_start = 0usize;
    let mut row_w = 0usize;
    for (text, style) in segments {
        for g in glyphs(text) {
            let w = cols(g);
            if row_w + w > width {
                let mut next = vec![(" ", Style::new()); indent];
                if g != " "
                    && w < 2
                    && let Some(row) = rows.last_mut()
                    && let Some(sp) = row.iter().rposition(|(ch, _)| *ch == " ")
                    && sp >= row_start
                    && sp + 1 < row.len()
                    && row[sp + 1..].iter().all(|(ch, _)| cols(ch) < 2)
                {
                    next.extend(row.split_off(sp + 1));
                }
                row_w = next.iter().map(|(ch, _)| cols(ch)).sum();
                row_start = indent;
                rows.push(next);
                if g == " " {
                    // A break eats the space it happens at.
                    continue;
                }
            }
            if let Some(row) = rows.last_mut() {
                row.push((g, *style));
            }
            row_w += w;
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut segs: Vec<Segment> = Vec::new();
            for (g, style) in row {
                match segs.last_mut() {
                    Some((s, st)) if *st == style => s.push_str(g),
                    _ => segs.push((g.to_owned(), style)),
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

/// What the top of a room's lines says about older ones, as a row's segments (`None`: nothing
/// to say; older lines load when PgUp reaches the top).
pub fn scrollback_segments(conv: &Conv) -> Option<Vec<Segment>> {
    let ConvId::Room(room) = conv.id() else {
        return None;
    };
    let state = conv.scrollback()?;
    let mut words = render::scrollback_words(room, &state)?;
    let style = match state {
        Scrollback::Failed(_) => {
            words.push_str(" (PgUp to try again)");
            Style::new().fg(Color::Red)
        }
        _ => Style::new()
            .fg(Color::DarkGray)
            .add_modifier(Modifier::ITALIC),
    };
    Some(vec![(format!("-- {words} --"), style)])
}

/// The message pane's rows and what was decided drawing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pane {
    /// At most the pane's height, the newest at the bottom.
    pub rows: Vec<Vec<Segment>>,
    /// The scroll, clamped to what there is.
    pub scroll: usize,
    /// The first row of the conversation (its oldest line, or what the room says about older
    /// ones) is in view: PgUp here loads older lines.
    pub top: bool,
}

/// The rows the message pane shows for the open conversation, the lines typed and not yet
/// acknowledged after its lines: at most `height`, the newest at the bottom, scrolled up as the
/// view says (clamped). Above a room's oldest line, what it says about older ones (loading, its
/// beginning). Also returns the clamped scroll.
pub fn message_rows(
    chat: &Chat,
    view: &View,
    width: usize,
    height: usize,
    tz_offset: i32,
) -> (Vec<Vec<Segment>>, usize) {
    let pane = pane(chat, view, width, height, tz_offset);
    (pane.rows, pane.scroll)
}

/// [`message_rows`], and whether the top of the conversation is in view.
pub fn pane(chat: &Chat, view: &View, width: usize, height: usize, tz_offset: i32) -> Pane {
    let me = chat.me();
    let conv = chat.current_conv();
    let scroll = view.scroll(chat);
    let want = height.saturating_add(scroll);
    let mut rows: VecDeque<Vec<Segment>> = VecDeque::new();
    // Newest first.
    let outgoing: Vec<&Outgoing> = chat.outgoing(conv.id()).collect();
    let pending = outgoing
        .iter()
        .rev()
        .map(|o| outgoing_segments(o, me, tz_offset));
    let sent = conv
        .lines()
        .iter()
        .rev()
        .map(|l| line_segments(l, me, tz_offset));
    let total = outgoing.len() + conv.lines().len();
    let mut taken = 0;
    for segments in pending.chain(sent) {
        for row in wrap(&segments, width, STAMP_WIDTH).into_iter().rev() {
            rows.push_front(row);
        }
        taken += 1;
        if rows.len() >= want {
            break;
        }
    }
    let all = taken == total;
    let scroll = scroll.min(rows.len().saturating_sub(height));
    let end = rows.len() - scroll;
    let start = end.saturating_sub(height);
    let top = all && start == 0;
    if top && let Some(said) = scrollback_segments(conv) {
        // The first line is in view, and so is what the room says above it: the rows below
        // make way (the scroll, counted from the bottom, is unchanged, so when it goes the
        // view is where it was).
        for row in wrap(&said, width, 3).into_iter().rev() {
            rows.push_front(row);
        }
        let shown = height.min(rows.len());
        return Pane {
            scroll: rows.len() - shown,
            rows: rows.into_iter().take(shown).collect(),
            top,
        };
    }
    Pane {
        rows: rows.into_iter().skip(start).take(end - start).collect(),
        scroll,
        top,
    }
}

/// The open conversation's [`Pane`] on a screen of `size`.
pub fn pane_on(chat: &Chat, view: &View, size: Rect, tz_offset: i32) -> Pane {
    let (width, height) = message_size(layout(size));
    pane(chat, view, width, height, tz_offset)
}

/// Rows `line` takes in the message pane on a screen of `size`.
pub fn line_rows(line: &Line, me: &Nick, size: Rect, tz_offset: i32) -> usize {
    let (width, _) = message_size(layout(size));
    wrap(&line_segments(line, me, tz_offset), width, STAMP_WIDTH).len()
}

/// Rows each line of conversation `id` takes on a screen of `size`, newest first, as [`pane`]
/// stacks them (the lines waiting for the server at the bottom): for [`View::rewrap`].
pub fn conv_rows(chat: &Chat, id: &ConvId, size: Rect, tz_offset: i32) -> Vec<usize> {
    let (width, _) = message_size(layout(size));
    let me = chat.me();
    let pending: Vec<&Outgoing> = chat.outgoing(id).collect();
    let pending = pending
        .into_iter()
        .rev()
        .map(|o| wrap(&outgoing_segments(o, me, tz_offset), width, STAMP_WIDTH).len());
    let sent = chat
        .conv(id)
        .into_iter()
        .flat_map(|c| c.lines().iter().rev())
        .map(|l| wrap(&line_segments(l, me, tz_offset), width, STAMP_WIDTH).len());
    pending.chain(sent).collect()
}

/// Columns and rows of text in the message pane.
fn message_size(areas: Areas) -> (usize, usize) {
    (
        usize::from(areas.messages.width.saturating_sub(1)).max(1),
        usize::from(areas.messages.height),
    )
}

/// One search hit's segments: local date and time, room, who and what (mentions of us
/// highlighted).
pub fn hit_segments(hit: &Hit, me: &Nick, tz_offset: i32) -> Vec<Segment> {
    let dim = Style::new().fg(Color::DarkGray);
    let mut out = vec![
        (format!("{} ", local_minute(hit.line.at, tz_offset)), dim),
        (
            format!("{} ", hit.room),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
    ];
    // The line's own segments, without their HH:MM stamp.
    out.extend(line_segments(&hit.line, me, tz_offset).into_iter().skip(1));
    out
}

/// The rows of a search's results, in place of the conversation: what it is and how it went,
/// then the hits, newest first, from the view's search scroll on (clamped). Also returns that
/// scroll.
pub fn search_rows(
    search: &Search,
    me: &Nick,
    scroll: usize,
    width: usize,
    height: usize,
    tz_offset: i32,
) -> (Vec<Vec<Segment>>, usize) {
    let head = vec![(
        format!("search: {} (Esc closes)", search.title()),
        Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
    )];
    let mut rows = wrap(&head, width, 2);
    let mut body: Vec<Vec<Segment>> = Vec::new();
    for hit in search.hits() {
        body.extend(wrap(&hit_segments(hit, me, tz_offset), width, STAMP_WIDTH));
    }
    let room = height.saturating_sub(rows.len()).max(1);
    let scroll = scroll.min(body.len().saturating_sub(room));
    rows.extend(body.into_iter().skip(scroll).take(room));
    rows.truncate(height);
    (rows, scroll)
}

/// The status line's text for `state` at `now`.
pub fn state_text(state: ConnState, now: Millis) -> String {
    match state {
        ConnState::Connecting => "Connecting".into(),
        ConnState::Connected => "Connected".into(),
        ConnState::Reconnecting { at, attempt, lost } => {
            let secs = at.since(now).0.div_ceil(1000);
            // Nothing was lost when the first connect (or one after it) failed.
            let doing = if lost { "Reconnecting" } else { "Retrying" };
            format!("{doing} in {secs}s (attempt {attempt})")
        }
        ConnState::Closed => "Disconnected".into(),
    }
}

/// How a conversation is named in the list and the status line.
pub fn conv_name(conv: &Conv) -> String {
    match conv.id() {
        ConvId::Direct(_) => format!("@{}", conv.label()),
        ConvId::Room(_) | ConvId::Server => conv.label().to_owned(),
    }
}

/// A conversation's counts as the list shows them: ` (3)`, or ` (3, @1)` when some are for us.
pub fn counts_text(conv: &Conv) -> Option<String> {
    match (conv.unread(), conv.mentions()) {
        (0, _) => None,
        (u, 0) => Some(format!(" ({u})")),
        (u, m) => Some(format!(" ({u}, @{m})")),
    }
}

/// The one column before a member's nick: its role's mark (`~`, `@`, `+`), or a space.
fn member_mark(role: Role) -> &'static str {
    match role.mark() {
        "" => " ",
        mark => mark,
    }
}

/// Members' marks stand out from the nicks, as the page's do.
fn mark_style() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

/// `text` as drawn ([`glyphs`]) cut to `width` columns, ending in `…` where it was cut (a long
/// room name or nick in the conversation list leaves room for its unread and mention counts).
fn fit(text: &str, width: usize) -> String {
    if drawn_cols(text) <= width {
        return glyphs(text).collect();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in glyphs(text) {
        if used + cols(g) + 1 > width {
            break;
        }
        used += cols(g);
        out.push_str(g);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// The empty input line's hint, until the first line is sent.
pub const INPUT_HINT: &str = "type to talk; /help lists commands and keys";

/// Draws the whole screen.
pub fn draw(
    frame: &mut Frame,
    chat: &Chat,
    view: &View,
    input: &InputLine,
    now: Millis,
    tz_offset: i32,
) {
    let areas = layout(frame.area());
    let bar = Style::new().fg(Color::White).bg(Color::Blue);
    let conv = chat.current_conv();

    // Topic.
    let topic = match (conv.id(), conv.topic()) {
        (ConvId::Room(r), Some(t)) => format!(" {r}: {t}"),
        (ConvId::Room(r), None) => format!(" {r}"),
        (ConvId::Direct(_), _) => format!(" {}: direct messages", conv_name(conv)),
        // Before the first welcome the rooms to join are on their way: nothing to do yet.
        (ConvId::Server, _) if !chat.ever_connected() => " natter: connecting…".into(),
        (ConvId::Server, _) => " natter: /join #room to start".into(),
    };
    // Drawn as the message pane draws text (an emoji sequence as the emoji it is made of).
    let topic: String = glyphs(&topic).collect();
    frame.render_widget(Paragraph::new(topic).style(bar), areas.topic);

    // Conversations.
    if let Some(area) = areas.rooms {
        let inner = Rect::new(area.x, area.y, area.width.saturating_sub(1), area.height);
        let rows: Vec<TextLine> = chat
            .conversations()
            .enumerate()
            .map(|(i, c)| {
                let counts = counts_text(c);
                let room_for_name =
                    usize::from(inner.width).saturating_sub(counts.as_ref().map_or(0, |s| s.len()));
                let name = fit(&format!("{} {}", i + 1, conv_name(c)), room_for_name);
                let mut spans = vec![Span::raw(name)];
                if let Some(counts) = counts {
                    let colour = if c.mentions() > 0 {
                        Color::LightMagenta
                    } else {
                        Color::Yellow
                    };
                    spans.push(Span::styled(
                        counts,
                        Style::new().fg(colour).add_modifier(Modifier::BOLD),
                    ));
                }
                let line = TextLine::from(spans);
                if c.id() == chat.current() {
                    line.style(Style::new().add_modifier(Modifier::REVERSED))
                } else {
                    line
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(rows), inner);
        draw_rule(frame, area.right().saturating_sub(1), area);
    }

    // Messages, bottom-aligned; or a search's results, from the top.
    let (width, height) = message_size(areas);
    let (rows, scroll, n) = match chat.search() {
        Some(search) => {
            let (rows, _) = search_rows(
                search,
                chat.me(),
                view.search_scroll(),
                width,
                height,
                tz_offset,
            );
            (rows, 0, u16::try_from(height).unwrap_or(u16::MAX))
        }
        None => {
            let (rows, scroll) = message_rows(chat, view, width, height, tz_offset);
            let n = u16::try_from(rows.len()).unwrap_or(u16::MAX);
            (rows, scroll, n)
        }
    };
    let msg_area = Rect::new(
        areas.messages.x + 1,
        areas.messages.bottom().saturating_sub(n),
        areas.messages.width.saturating_sub(1),
        n.min(areas.messages.height),
    );
    let lines: Vec<TextLine> = rows.into_iter().map(text_line).collect();
    frame.render_widget(Paragraph::new(lines), msg_area);

    // Members: a room's; in a direct conversation the two people, not "0 here".
    if let Some(area) = areas.members {
        draw_rule(frame, area.x, area);
        let (title, people): (String, Vec<&Nick>) = match conv.id() {
            ConvId::Room(_) => (
                format!("{} here", conv.member_count()),
                conv.members().iter().collect(),
            ),
            ConvId::Direct(peer) => ("direct".to_owned(), vec![peer, chat.me()]),
            ConvId::Server => (String::new(), Vec::new()),
        };
        let mut rows = vec![TextLine::styled(
            title,
            Style::new().add_modifier(Modifier::BOLD),
        )];
        if conv.members_partial() {
            // A big room: joins and parts come summed up, the list from `/who`.
            rows.push(TextLine::styled(
                format!("{} listed (/who)", people.len()),
                Style::new().fg(Color::DarkGray),
            ));
        }
        rows.extend(people.into_iter().take(usize::from(area.height)).map(|n| {
            // A direct conversation's peer as they write their nick (the id is folded).
            let shown = match conv.id() {
                ConvId::Direct(peer) if n == peer => conv.label().to_owned(),
                _ => n.to_string(),
            };
            // Someone away: dimmed and in italics, as chat clients' lists show them.
            let style = match conv.away().get(n) {
                Some(_) => Style::new()
                    .fg(Color::DarkGray)
                    .add_modifier(Modifier::ITALIC),
                None => Style::new().fg(nick_colour(n)),
            };
            match conv.id() {
                // A room's member: its standing first (`~` founder, `@` operator, `+` voiced),
                // in a column of its own, as the page and IRC clients' lists show it.
                ConvId::Room(room) => TextLine::from(vec![
                    Span::styled(member_mark(chat.role(room, n)), mark_style()),
                    Span::styled(shown, style),
                ]),
                _ => TextLine::styled(shown, style),
            }
        }));
        let inner = Rect::new(
            area.x + 1,
            area.y,
            area.width.saturating_sub(1),
            area.height,
        );
        frame.render_widget(Paragraph::new(rows), inner);
    }

    // Status.
    let mut status = format!(" [{}] {}", state_text(chat.conn(), now), chat.me());
    if let Some(account) = chat.account() {
        status.push_str(&format!(" · signed in as {account}"));
    }
    if chat.my_away().is_some() {
        // Said once as a line when it began, which scrolls away while it still holds.
        status.push_str(" · away (/back)");
    }
    if *conv.id() != ConvId::Server {
        status.push_str(&format!(" │ {}", conv_name(conv)));
    }
    if scroll > 0 {
        status.push_str(&format!(" │ scrolled up {scroll} (PgDn or wheel)"));
    }
    frame.render_widget(Paragraph::new(status).style(bar), areas.status);

    // Input.
    let prompt = "> ";
    let avail = usize::from(areas.input.width).saturating_sub(prompt.len());
    let (shown, cursor_col) = input.visible(avail);
    if input.wants_hint() {
        // A first run's empty screen says nothing of where to start: the input line does, dim,
        // until the first line is sent.
        let hint = fit(INPUT_HINT, avail);
        frame.render_widget(
            Paragraph::new(TextLine::from(vec![
                Span::raw(prompt),
                Span::styled(hint, Style::new().fg(Color::DarkGray)),
            ])),
            areas.input,
        );
    } else {
        frame.render_widget(Paragraph::new(format!("{prompt}{shown}")), areas.input);
    }
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
    use super::super::view::tests::{AT, apply, chat_in, joined, nick, rid, room, room_ev, say};
    use super::*;
    use natter_core::session::{ChatKind, Event, Target};
    use natter_core::wire::EventKind;
    use natter_core::{MsgId, Seq, Text};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(chat: &Chat, view: &View, input: &InputLine, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, chat, view, input, Millis(0), 0))
            .unwrap();
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
        // CJK breaks between its characters: it fills the row after the nick rather than
        // leaving it empty, and a Latin word after it still moves whole.
        let cjk = vec![
            ("<bob> ".to_owned(), bold),
            ("日本語のテキスト ok".to_owned(), Style::new()),
        ];
        assert_eq!(
            plain(&wrap(&cjk, 12, 0)),
            ["<bob> 日本語", "のテキスト ", "ok"]
        );
        // Every row fits.
        for (w, indent) in (1..30).flat_map(|w| [(w, 0), (w, 6)]) {
            for row in wrap(&segs, w, indent) {
                let width: usize = row.iter().map(|(s, _)| cols(s)).sum();
                assert!(width <= w, "{row:?} wider than {w}");
            }
        }
    }

    /// An emoji sequence (a family joined by zero width joiners, a skin tone, an emoji with a
    /// variation selector) was drawn as one glyph two columns wide, which terminals do not
    /// agree on (tmux 3.3 draws a skin tone 4 columns wide, `❤️` 1, xterm a family 6): the rest
    /// of the row moved or was overwritten. Each is drawn as the emoji it is made of, as wide
    /// on every terminal; a flag stays whole (2 columns everywhere), as does text in other
    /// scripts (a ZWJ in Devanagari is kept). Never split between rows.
    #[test]
    fn emoji_sequences_are_drawn_as_the_emoji_they_are_made_of() {
        let family = "👨\u{200d}👩\u{200d}👧";
        let flag = "🇫🇷";
        let thumb = "👍🏽";
        let heart = "❤\u{fe0f}";
        let rainbow = "🏳\u{fe0f}\u{200d}🌈";
        let hindi = "क्\u{200d}ष";
        fn drawn(t: &str) -> Vec<&str> {
            glyphs(t).collect()
        }
        assert_eq!(drawn(family), ["👨", "👩", "👧"]);
        assert_eq!(drawn(thumb), ["👍"]);
        assert_eq!(drawn(heart), ["❤"]);
        assert_eq!(drawn(rainbow), ["🏳", "🌈"]);
        assert_eq!(drawn(flag), [flag]);
        assert_eq!(drawn(hindi).concat(), hindi);
        assert_eq!(drawn("a b").concat(), "a b");
        let text = format!("{family} {flag} {thumb} {heart}");
        let whole = wrap(&[(text.clone(), Style::new())], 20, 0);
        assert_eq!(plain(&whole), ["👨👩👧 🇫🇷 👍 ❤"]);
        // Narrower: whole glyphs on every row, each row within the width.
        for w in 2..14 {
            let rows = wrap(&[(text.clone(), Style::new())], w, 0);
            for row in &rows {
                let width: usize = row.iter().map(|(s, _)| cols(s)).sum();
                assert!(width <= w, "{row:?} wider than {w}");
            }
            assert_eq!(
                plain(&rows).concat().replace(' ', ""),
                "👨👩👧🇫🇷👍❤",
                "width {w}"
            );
        }
        // On screen: the line ends where the pane does, the member list's rule in its place.
        let mut c = chat_in(&["#lobby"]);
        c.handle_event(&joined("#lobby", &["me", "bob"]), Millis(0));
        c.handle_event(
            &say("#lobby", "bob", &format!("{family}{thumb} ok")),
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        let row = s
            .iter()
            .find(|l| l.contains("<bob>"))
            .unwrap_or_else(|| panic!("{s:#?}"));
        // (A wide glyph's second cell reads as a space.)
        assert!(row.contains("<bob> 👨 👩 👧 👍  ok"), "{row:?}");
    }

    /// A grapheme cluster of nothing but what dresses an emoji (two skin tones in a row, a
    /// skin tone and a joiner) was drawn as nothing at all: the cursor stepped over it with
    /// nothing to show for it. It is drawn as its first character, as it is alone.
    #[test]
    fn a_cluster_of_dressing_alone_is_still_drawn() {
        for text in [
            "\u{1f3fd}\u{1f3fd}",
            "\u{1f3fd}\u{200d}",
            "\u{1f3fd}\u{fe0f}",
        ] {
            assert_eq!(glyphs(text).collect::<Vec<_>>(), ["\u{1f3fd}"], "{text:?}");
        }
        assert_eq!(drawn_cols("\u{1f3fd}\u{1f3fd} a"), 4);
        // After a letter they dress it (one cluster): the letter alone, as before.
        assert_eq!(glyphs("a\u{1f3fd}\u{1f3fd}").collect::<Vec<_>>(), ["a"]);
    }

    /// A variation selector asking for an emoji's presentation was dropped only in the block
    /// of `❤` and above `U+1F000`: `↔️`, `©️`, `▶️` or a keycap `1️⃣` was measured two columns
    /// (as unicode-width counts it) and drawn one where the terminal ignores the selector
    /// (tmux, as for `❤️`), and the rest of the row moved. Dropped from any cluster: it only
    /// chooses a presentation. Other scripts' joiners are kept.
    #[test]
    fn a_variation_selector_is_dropped_whatever_the_emoji() {
        for (text, drawn) in [
            ("↔\u{fe0f}", "↔"),
            ("©\u{fe0f}", "©"),
            ("▶\u{fe0f}", "▶"),
            ("1\u{fe0f}\u{20e3}", "1\u{20e3}"),
        ] {
            assert_eq!(glyphs(text).collect::<String>(), drawn, "{text:?}");
            assert_eq!(drawn_cols(text), 1, "{text:?}");
        }
        let hindi = "क्\u{200d}ष";
        assert_eq!(glyphs(hindi).collect::<String>(), hindi);
    }

    /// The conversation list's names (`fit`) and the topic bar drew an emoji sequence whole,
    /// measured as one glyph, where the message pane and the input line draw the emoji it is
    /// made of: a topic with a skin tone moved the rest of the bar on tmux, as a message did.
    /// Both draw and measure [`glyphs`] now.
    #[test]
    fn the_topic_and_the_conversation_list_draw_emoji_sequences_as_the_pane_does() {
        let family = "👨\u{200d}👩\u{200d}👧";
        assert_eq!(fit(family, 6), "👨👩👧");
        assert_eq!(fit(family, 4), "👨…");
        assert_eq!(fit("👍\u{1f3fd} ab", 5), "👍 ab");
        let mut c = Chat::new(nick("me"));
        c.handle_event(
            &Event::State(natter_core::session::ConnState::Connected),
            Millis(0),
        );
        c.handle_event(
            &Event::Joined {
                room: room("#lobby"),
                topic: Some(Text::new("thumbs 👍\u{1f3fd} and ❤\u{fe0f} end").unwrap()),
                members: vec![nick("me")],
                seq: Seq(1),
            },
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(s[0].contains("thumbs 👍  and ❤ end"), "{:?}", s[0]);
        assert!(!s[0].contains('\u{1f3fd}'), "{:?}", s[0]);
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
            let c = Chat::new(nick("me"));
            let _ = screen(&c, &View::new(), &InputLine::new(), w.max(1), h.max(1));
        }
    }

    #[test]
    fn the_empty_input_line_says_how_to_start_until_a_line_is_sent() {
        let c = chat_in(&["#lobby"]);
        let mut input = InputLine::new();
        let s = screen(&c, &View::new(), &input, 100, 12);
        assert_eq!(s[11].trim_end(), format!("> {INPUT_HINT}"), "{s:?}");
        input.paste("hi");
        let s = screen(&c, &View::new(), &input, 100, 12);
        assert_eq!(s[11].trim_end(), "> hi", "{s:?}");
        assert_eq!(input.submit().as_deref(), Some("hi"));
        let s = screen(&c, &View::new(), &input, 100, 12);
        assert_eq!(s[11].trim_end(), ">", "{s:?}");
        // Narrow: cut to fit, not wrapped over the status line.
        let s = screen(&c, &View::new(), &InputLine::new(), 20, 12);
        assert!(s[11].starts_with("> type to talk"), "{s:?}");
        assert!(s[11].chars().count() <= 20, "{s:?}");
    }

    #[test]
    fn the_screen_shows_rooms_messages_members_and_input() {
        let mut c = chat_in(&["#lobby", "#rust"]);
        c.handle_event(&joined("#lobby", &["me", "bob"]), Millis(0));
        c.handle_event(&say("#lobby", "bob", "hello there"), Millis(0));
        c.handle_event(&say("#rust", "ann", "psst"), Millis(0));
        c.handle_event(&say("#rust", "ann", "again"), Millis(0));
        let mut input = InputLine::new();
        input.paste("typing");
        let s = screen(&c, &View::new(), &input, 100, 12);
        assert!(s[0].contains("#lobby"), "topic: {:?}", s[0]);
        assert!(s[1].starts_with("1 #lobby"), "{:?}", s[1]);
        assert!(s[2].starts_with("2 #rust (2)"), "{:?}", s[2]);
        assert!(s[1].contains("2 here"));
        assert!(s.iter().any(|l| l.contains("│ bob")));
        // The newest message is on the last row of the pane, with its time.
        assert!(s[9].contains("22:13 <bob> hello there"), "{:?}", s[9]);
        assert!(s[10].contains("[Connected] me │ #lobby"), "{:?}", s[10]);
        assert!(s[11].starts_with("> typing"));
    }

    /// A room's member list marks the founder `~`, operators `@` and voiced members `+` in a
    /// column before the nick (a space for the others), as the page and IRC clients do, and
    /// follows changes of the room's settings.
    #[test]
    fn members_are_marked_with_their_standing_in_the_room() {
        let mut c = chat_in(&["#lobby"]);
        c.handle_event(
            &joined("#lobby", &["me", "bob", "carol", "dave", "erin"]),
            Millis(0),
        );
        let policy = |founder: &str, ops: &[&str], voiced: &[&str]| Event::Policy {
            room: room("#lobby"),
            founder: Some(nick(founder)),
            ops: ops.iter().map(|n| nick(n)).collect(),
            voiced: voiced.iter().map(|n| nick(n)).collect(),
            modes: Default::default(),
            asked: false,
        };
        c.handle_event(&policy("Bob", &["carol"], &["dave"]), Millis(0));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        let row = |who: &str| {
            s.iter()
                .find_map(|l| l.split('│').nth(2).filter(|m| m.trim_end().ends_with(who)))
                .map(|m| m.trim_end().to_owned())
                .unwrap_or_else(|| panic!("{who} in {s:#?}"))
        };
        assert_eq!(row("bob"), "~bob");
        assert_eq!(row("carol"), "@carol");
        assert_eq!(row("dave"), "+dave");
        assert_eq!(row("erin"), " erin");
        // The mark stands out from the nick.
        let mut t = Terminal::new(TestBackend::new(100, 12)).unwrap();
        t.draw(|f| draw(f, &c, &View::new(), &InputLine::new(), Millis(0), 0))
            .unwrap();
        let buf = t.backend().buffer().clone();
        let at = (0..12)
            .find_map(|y| {
                let row: String = (0..100).map(|x| buf[(x, y)].symbol().to_owned()).collect();
                let at = row.find("│@carol")?;
                Some((row[..at].chars().count() as u16 + 1, y))
            })
            .expect("carol's row");
        assert_eq!(buf[at].symbol(), "@");
        assert!(buf[at].modifier.contains(Modifier::BOLD));
        // Settings change: carol deopped, erin voiced.
        c.handle_event(&policy("bob", &[], &["dave", "erin"]), Millis(0));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(s.iter().any(|l| l.contains("│ carol")), "{s:#?}");
        assert!(s.iter().any(|l| l.contains("│+erin")), "{s:#?}");
    }

    /// A member who is away is drawn dimmed and in italics, and again in their colour once
    /// back.
    #[test]
    fn members_who_are_away_are_dimmed_in_the_list() {
        let mut c = chat_in(&["#lobby"]);
        c.handle_event(&joined("#lobby", &["me", "bob", "carol"]), Millis(0));
        c.handle_event(
            &Event::AwayHere {
                room: room("#lobby"),
                away: vec![(nick("carol"), Text::new("lunch").unwrap())],
            },
            Millis(0),
        );
        let style_of = |c: &Chat, who: &str| {
            let mut t = Terminal::new(TestBackend::new(100, 12)).unwrap();
            t.draw(|f| draw(f, c, &View::new(), &InputLine::new(), Millis(0), 0))
                .unwrap();
            let buf = t.backend().buffer().clone();
            let (x, y) = (0..12)
                .find_map(|y| {
                    let row: String = (0..100).map(|x| buf[(x, y)].symbol().to_owned()).collect();
                    let at = row.find(&format!("│ {who}"))?;
                    // Columns, not bytes: the rule is one cell of three bytes; then the mark.
                    Some((row[..at].chars().count() as u16 + 2, y))
                })
                .unwrap_or_else(|| panic!("{who} in the list"));
            (
                buf[(x, y)].fg,
                buf[(x, y)].modifier.contains(Modifier::ITALIC),
            )
        };
        assert_eq!(style_of(&c, "carol"), (Color::DarkGray, true));
        assert_eq!(style_of(&c, "bob"), (nick_colour(&nick("bob")), false));
        c.handle_event(
            &Event::Away {
                nick: nick("carol"),
                away: None,
            },
            Millis(0),
        );
        assert_eq!(style_of(&c, "carol"), (nick_colour(&nick("carol")), false));
    }

    /// The times shown counted from one wall-clock reading at start: after a sleep or a clock
    /// step, every line said here showed a time off by it. The wall clock read with the turn
    /// stamps them (fake readings here: an hour's sleep the monotonic clock did not see).
    #[test]
    fn lines_said_here_show_the_wall_clock_of_their_turn_after_a_sleep() {
        let mut c = chat_in(&["#lobby"]);
        // 2023-11-14 22:13:20 UTC.
        let wall = Millis(1_700_000_000_000);
        c.set_wall_clock(wall, Millis(5_000));
        c.note("before the sleep", Millis(5_000));
        c.set_wall_clock(wall + Millis(3_600_000), Millis(6_000));
        c.note("after the sleep", Millis(6_000));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(
            s.iter().any(|l| l.contains("22:13 -- before the sleep")),
            "{s:#?}"
        );
        assert!(
            s.iter().any(|l| l.contains("23:13 -- after the sleep")),
            "{s:#?}"
        );
    }

    #[test]
    fn before_the_first_welcome_the_top_says_connecting_not_join_a_room() {
        let c = Chat::new(nick("me"));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert_eq!(s[0].trim_end(), " natter: connecting…");
        let mut c = chat_in(&["#lobby"]);
        let welcome = Event::Welcome {
            nick: nick("me"),
            resumed: false,
            signing_in: None,
        };
        c.handle_event(&welcome, Millis(0));
        c.handle_event(
            &Event::Parted {
                room: room("#lobby"),
                kicked: false,
            },
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert_eq!(s[0].trim_end(), " natter: /join #room to start");
    }

    #[test]
    fn a_direct_conversation_lists_its_two_people_not_nobody_here() {
        let mut c = chat_in(&["#lobby"]);
        c.handle_event(
            &Event::Direct(natter_core::wire::DirectMsg {
                from: nick("Bob"),
                to: nick("me"),
                id: MsgId(1),
                at: Millis(0),
                text: Text::new("psst").unwrap(),
            }),
            Millis(0),
        );
        c.open_direct(&nick("bob"));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(!s.iter().any(|l| l.contains("0 here")), "{s:#?}");
        assert!(s[1].trim_end().ends_with("│direct"), "{:?}", s[1]);
        assert!(s[2].contains("│Bob"), "{:?}", s[2]);
        assert!(s[3].contains("│me"), "{:?}", s[3]);
    }

    #[test]
    fn the_status_line_says_while_we_are_away() {
        let mut c = chat_in(&["#lobby"]);
        let away = |a: Option<&str>| Event::Away {
            nick: nick("me"),
            away: a.map(|a| Text::new(a).unwrap()),
        };
        c.handle_event(&away(Some("lunch")), Millis(0));
        // The line that said so gone from view: the status still says it.
        for i in 0..20 {
            c.handle_event(&say("#lobby", "ann", &format!("line {i}")), Millis(0));
        }
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(!s.iter().any(|l| l.contains("you are away")), "{s:#?}");
        assert!(
            s[10].contains("[Connected] me · away (/back) │ #lobby"),
            "{:?}",
            s[10]
        );
        c.handle_event(&away(None), Millis(0));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(s[10].contains("[Connected] me │ #lobby"), "{:?}", s[10]);
    }

    /// Scrolled up, the status line named only PgDn as the way back down, though the mouse
    /// wheel scrolls too: it names both.
    #[test]
    fn the_status_line_says_the_wheel_scrolls_back_down_too() {
        let mut c = chat_in(&["#lobby"]);
        let mut v = View::new();
        for i in 0..30 {
            apply(&mut c, &mut v, &say("#lobby", "ann", &format!("line {i}")));
        }
        let s = screen(&c, &v, &InputLine::new(), 100, 12);
        assert!(!s[10].contains("scrolled up"), "{:?}", s[10]);
        v.scroll_up(&c, 3);
        let s = screen(&c, &v, &InputLine::new(), 100, 12);
        assert!(
            s[10].contains("│ #lobby │ scrolled up 3 (PgDn or wheel)"),
            "{:?}",
            s[10]
        );
    }

    #[test]
    fn the_status_line_says_who_we_are_signed_in_as_and_counts_follow_read_markers() {
        let mut c = chat_in(&["#lobby", "#rust"]);
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(!s[10].contains("signed in"), "a guest: {:?}", s[10]);
        c.handle_event(
            &Event::SignedIn {
                account: nick("me"),
                key: None,
            },
            Millis(0),
        );
        c.handle_event(&say("#rust", "ann", "psst"), Millis(0));
        c.handle_event(&say("#rust", "ann", "again"), Millis(0));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(
            s[10].contains("[Connected] me · signed in as me │ #lobby"),
            "{:?}",
            s[10]
        );
        assert!(s[2].starts_with("2 #rust (2)"), "{:?}", s[2]);
        // Read on another device.
        let upto = c.conv(&rid("#rust")).unwrap().newest_seq().unwrap();
        c.handle_event(
            &Event::ReadUpTo {
                room: room("#rust"),
                seq: upto,
            },
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 12);
        assert!(s[2].starts_with("2 #rust "), "{:?}", s[2]);
        assert!(!s[2].contains("(2)"), "{:?}", s[2]);
    }

    #[test]
    fn mentions_of_our_nick_stand_out_and_direct_messages_are_listed() {
        let mut c = chat_in(&["#a", "#b"]);
        c.handle_event(&say("#a", "bob", "hey ME, look"), Millis(0));
        c.handle_event(&say("#b", "bob", "me too"), Millis(0));
        c.handle_event(
            &Event::Direct(natter_core::wire::DirectMsg {
                from: nick("Zed"),
                to: nick("me"),
                id: MsgId(4),
                at: AT,
                text: Text::new("psst").unwrap(),
            }),
            Millis(0),
        );
        let (rows, _) = message_rows(&c, &View::new(), 60, 10, 0);
        let last = rows.last().unwrap();
        let highlighted: Vec<&str> = last
            .iter()
            .filter(|(_, st)| *st == MENTION)
            .map(|(s, _)| s.as_str())
            .collect();
        assert_eq!(highlighted, ["ME"], "{last:?}");
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 10);
        assert!(s[2].starts_with("2 #b (1, @1)"), "{:?}", s[2]);
        assert!(s[3].starts_with("3 @Zed (1, @1)"), "{:?}", s[3]);
        // A name longer than the list is wide is cut, and its counts still show.
        c.handle_event(&joined("#a-rather-long-room-name", &["me"]), Millis(0));
        c.handle_event(&say("#a-rather-long-room-name", "bob", "hi me"), Millis(0));
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 10);
        assert!(s[3].starts_with("3 #a-rat… (1, @1)│"), "{:?}", s[3]);
        // A line that does not mention us has no highlight.
        c.open(&rid("#b"));
        let (rows, _) = message_rows(&c, &View::new(), 60, 10, 0);
        assert!(rows.last().unwrap().iter().any(|(_, st)| *st == MENTION));
        c.handle_event(&say("#b", "bob", "memes"), Millis(0));
        let (rows, _) = message_rows(&c, &View::new(), 60, 10, 0);
        assert!(!rows.last().unwrap().iter().any(|(_, st)| *st == MENTION));
    }

    #[test]
    fn a_notice_reads_as_irc_shows_one_in_the_notice_colour() {
        let mut c = chat_in(&["#a"]);
        c.handle_event(
            &room_ev(
                "#a",
                "bot",
                EventKind::Notice {
                    id: MsgId(1),
                    text: Text::new("build passed").unwrap(),
                },
            ),
            Millis(0),
        );
        let segs = line_segments(c.current_conv().lines().back().unwrap(), c.me(), 0);
        let text: String = segs[1..].iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(text, "-bot- build passed");
        let notice = Style::new().fg(Color::Cyan);
        assert_eq!(segs.last().unwrap().1, notice, "{segs:?}");
    }

    /// `/msg bob hi` typed in a room said `-- -> *bob* hi` there, a notice's dashes before
    /// line mode's words for a direct message sent, while README, line mode and the page say
    /// `-> *bob* hi`. As they do now; other notices keep their dashes.
    #[test]
    fn a_direct_message_sent_from_another_conversation_reads_as_line_mode_prints_it() {
        let mut c = chat_in(&["#a"]);
        let words = c.sent_elsewhere("/msg bob hi there").unwrap();
        c.note(words, Millis(0));
        let words = c.sent_elsewhere("/notice bob build passed").unwrap();
        c.note(words, Millis(0));
        c.note("-> not an echo: a note of the front end", Millis(0));
        let said: Vec<String> = c
            .current_conv()
            .lines()
            .iter()
            .rev()
            .take(3)
            .map(|l| {
                line_segments(l, c.me(), 0)[1..]
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            said,
            [
                "-- -> not an echo: a note of the front end",
                "-> -bob- build passed",
                "-> *bob* hi there"
            ]
        );
    }

    #[test]
    fn long_messages_wrap_in_the_pane_and_scroll() {
        let mut c = chat_in(&["#a"]);
        let mut v = View::new();
        for i in 0..20 {
            apply(
                &mut c,
                &mut v,
                &say("#a", "bob", &format!("message number {i}")),
            );
        }
        apply(&mut c, &mut v, &say("#a", "bob", &"word ".repeat(20)));
        let long_rows = wrap(
            &line_segments(c.current_conv().lines().back().unwrap(), c.me(), 0),
            39,
            STAMP_WIDTH,
        )
        .len();
        assert!(long_rows >= 3, "{long_rows}");
        let (rows, _) = message_rows(&c, &v, 39, 5, 0);
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
        v.scroll_up(&c, long_rows);
        let (rows, scroll) = message_rows(&c, &v, 39, 5, 0);
        assert_eq!(scroll, long_rows);
        assert!(plain(&rows)[4].contains("message number 19"));
        v.scroll_up(&c, 10_000);
        let (rows, scroll) = message_rows(&c, &v, 39, 5, 0);
        assert!(
            plain(&rows)[0].contains("you are in #a"),
            "{:?}",
            plain(&rows)
        );
        let notice_rows = wrap(
            &line_segments(&c.current_conv().lines()[0], c.me(), 0),
            39,
            STAMP_WIDTH,
        )
        .len();
        assert_eq!(scroll, notice_rows + 20 + long_rows - 5);
        v.scroll_down(&c, 10_000);
        assert_eq!(message_rows(&c, &v, 39, 5, 0).1, 0);
    }

    /// Reading scrolled up while a long line arrives: the rows on screen stay where they are
    /// (the view moved by all but one of the new line's rows, and the reader lost their place).
    #[test]
    fn a_long_line_arriving_leaves_a_scrolled_view_where_it_is() {
        let size = Rect::new(0, 0, 60, 12);
        let mut c = chat_in(&["#a"]);
        let mut v = View::new();
        let follow = |c: &mut Chat, v: &mut View, ev: &Event| {
            c.handle_event(ev, Millis(0));
            while let Some(change) = c.poll_change() {
                v.follow(&change, c, |line| line_rows(line, c.me(), size, 0));
            }
        };
        for i in 0..40 {
            follow(
                &mut c,
                &mut v,
                &say("#a", "bob", &format!("message number {i}")),
            );
        }
        v.scroll_up(&c, 10);
        let before = plain(&pane_on(&c, &v, size, 0).rows);
        assert!(
            before.iter().any(|r| r.contains("message number 25")),
            "{before:?}"
        );
        follow(&mut c, &mut v, &say("#a", "bob", &"word ".repeat(60)));
        let after = plain(&pane_on(&c, &v, size, 0).rows);
        assert_eq!(after, before, "the view moved");
    }

    #[test]
    fn status_line_counts_down_a_reconnect() {
        let s = ConnState::Reconnecting {
            at: Millis(10_500),
            attempt: 2,
            lost: true,
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
        let mut c = chat_in(&["#a"]);
        c.handle_event(&say("#a", "bob", "before"), Millis(0));
        c.handle_event(
            &Event::Gap {
                room: room("#a"),
                first: Seq(3),
                last: Seq(7),
            },
            Millis(0),
        );
        c.handle_event(&say("#a", "bob", "after"), Millis(0));
        c.handle_event(
            &Event::Info(natter_core::render::lost_words("reset")),
            Millis(0),
        );
        c.handle_event(
            &Event::State(ConnState::Reconnecting {
                at: Millis(4_000),
                attempt: 1,
                lost: true,
            }),
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        let at = |text: &str| s.iter().position(|l| l.contains(text));
        let gap = at("~~~ 5 messages missed here (#a #3..#7) ~~~").expect("gap marker shown");
        assert!(at("<bob> before").unwrap() < gap && gap < at("<bob> after").unwrap());
        assert!(at("-- connection lost: reset; reconnecting").is_some());
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
    fn a_big_rooms_summary_sets_the_count_and_says_the_list_is_partial() {
        let mut c = chat_in(&["#a"]);
        c.handle_event(
            &Event::Crowd {
                room: room("#a"),
                joined: 12,
                left: 3,
                members: 5_000,
            },
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        assert!(s[1].contains("5000 here"), "{s:#?}");
        assert!(s[2].contains("1 listed (/who)"), "{s:#?}");
        assert!(
            s.iter()
                .any(|l| l.contains("-- #a: 12 joined, 3 left (5000 members)")),
            "{s:#?}"
        );
    }

    #[test]
    fn joins_show_in_the_member_pane() {
        let mut c = chat_in(&["#a"]);
        let before = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        assert!(!before.iter().any(|l| l.contains("│ newbie")));
        c.handle_event(&room_ev("#a", "newbie", EventKind::Join), Millis(0));
        let after = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        assert!(after.iter().any(|l| l.contains("│ newbie")), "{after:#?}");
        assert!(after[1].contains("2 here"));
        assert!(after.iter().any(|l| l.contains("-- newbie joined #a")));
    }

    fn queued(id: u64, to: Target, kind: ChatKind, text: &str) -> Event {
        Event::Queued {
            id: MsgId(id),
            to,
            kind,
            text: Text::new(text).unwrap(),
        }
    }

    #[test]
    fn typed_lines_show_after_the_real_ones_and_dim_only_once_they_wait() {
        let mut c = chat_in(&["#a"]);
        let a = || Target::Room(room("#a"));
        let t0 = AT;
        let bob = || Target::Nick(nick("bob"));
        c.handle_event(&queued(1, a(), ChatKind::Say, "hello"), t0);
        c.handle_event(&queued(2, a(), ChatKind::Act, "waves"), t0);
        c.handle_event(&queued(3, bob(), ChatKind::Say, "psst"), t0);
        c.handle_event(&queued(4, bob(), ChatKind::Notice, "ping"), t0);
        // Arrives after the lines were typed, yet shows above them.
        c.handle_event(&say("#a", "bob", "live"), t0);
        let shown = |c: &Chat| {
            let (rows, _) = message_rows(c, &View::new(), 60, 10, 0);
            let text = plain(&rows)
                .iter()
                .map(|r| r.trim_end().to_owned())
                .collect::<Vec<_>>();
            (text[text.len().saturating_sub(3)..].to_vec(), rows)
        };
        // Fresh: they look like sent lines (a live echo takes milliseconds).
        let (text, _) = shown(&c);
        assert_eq!(
            text,
            ["22:13 <bob> live", "22:13 <me> hello", "22:13 * me waves"]
        );
        // Waiting noticeably: dimmed and tagged, decided by the model.
        c.handle_timeout(t0 + natter_core::limits::PENDING_LOOK_AFTER);
        let (text, rows) = shown(&c);
        assert_eq!(
            text,
            [
                "22:13 <bob> live",
                "22:13 <me> hello (sending)",
                "22:13 * me waves (sending)",
            ]
        );
        for row in &rows[rows.len() - 2..] {
            assert!(
                row.iter().all(|(_, st)| st.fg == Some(Color::DarkGray)
                    && st.add_modifier.contains(Modifier::DIM)
                    && !st.add_modifier.contains(Modifier::BOLD)),
                "{row:?}"
            );
        }
        // The direct message and notice wait in their own conversation, each as it reads.
        c.open(&ConvId::direct(&nick("bob")));
        let (text, _) = shown(&c);
        assert_eq!(
            text[text.len() - 2..],
            ["22:13 <me> psst (sending)", "22:13 -me- ping (sending)"]
        );
        c.open(&rid("#a"));
        // The echo arrives, then the settlement: one normal line, no tag; a refusal fails in
        // place and says why.
        c.handle_event(&say("#a", "me", "hello"), t0);
        c.handle_event(
            &Event::Settled {
                id: MsgId(1),
                delivered: true,
            },
            t0,
        );
        c.handle_event(
            &Event::Error {
                kind: None,
                about: natter_core::session::About::Message(MsgId(2)),
                text: "slow down".into(),
            },
            t0,
        );
        c.handle_event(
            &Event::Settled {
                id: MsgId(2),
                delivered: false,
            },
            t0,
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        assert_eq!(s.iter().filter(|l| l.contains("<me> hello")).count(), 1);
        assert!(!s.iter().any(|l| l.contains("(sending)")), "{s:#?}");
        assert!(
            s.iter()
                .any(|l| l.contains("* me waves (not delivered: slow down)")),
            "{s:#?}"
        );
    }

    fn past_say(seq: u64, text: &str) -> natter_core::wire::RoomEvent {
        natter_core::wire::RoomEvent {
            room: room("#a"),
            seq: Seq(seq),
            at: AT,
            from: nick("old"),
            kind: EventKind::Say {
                id: MsgId(seq),
                text: Text::new(text).unwrap(),
            },
        }
    }

    #[test]
    fn the_top_of_a_room_says_loading_then_shows_older_lines_without_moving_the_view() {
        let mut c = chat_in(&["#a"]);
        let mut v = View::new();
        for i in 0..12 {
            apply(&mut c, &mut v, &say("#a", "bob", &format!("now {i}")));
        }
        // Scrolled to the top: the pane says it is there, and nothing is said above.
        v.scroll_up(&c, 10_000);
        let p = pane(&c, &v, 60, 6, 0);
        v.clamp(&c, p.scroll);
        assert!(p.top);
        assert!(
            plain(&p.rows)[0].contains("you are in #a"),
            "{:?}",
            plain(&p.rows)
        );
        let before = plain(&p.rows);
        // Loading: a line above the oldest says so.
        apply(&mut c, &mut v, &Event::Older { room: room("#a") });
        let p = pane(&c, &v, 60, 6, 0);
        assert_eq!(plain(&p.rows)[0], "-- loading older lines… --");
        assert_eq!(plain(&p.rows)[1..], before[..5], "the rest where it was");
        // The lines come: what was on screen stays on screen, the new lines are above it.
        apply(
            &mut c,
            &mut v,
            &Event::Past {
                room: room("#a"),
                events: (1..=8)
                    .map(|i| past_say(i + 10, &format!("old {i}")))
                    .collect(),
                at_start: false,
                oldest: Some(natter_core::Seq(11)),
            },
        );
        let p = pane(&c, &v, 60, 6, 0);
        let rows = plain(&p.rows);
        // They go above the notice of our joining, which stays where this visit began.
        assert_eq!(rows, before, "the view did not jump");
        assert!(!p.top);
        // Up again: nothing older is kept (the room began before seq 11, which the server
        // forgot), said at the very top once it is known.
        v.scroll_up(&c, 10_000);
        apply(&mut c, &mut v, &Event::Older { room: room("#a") });
        apply(
            &mut c,
            &mut v,
            &Event::Past {
                room: room("#a"),
                events: Vec::new(),
                at_start: true,
                oldest: Some(natter_core::Seq(11)),
            },
        );
        let p = pane(&c, &v, 60, 6, 0);
        let rows = plain(&p.rows);
        assert!(p.top);
        assert_eq!(rows[0], "-- older lines of #a are no longer kept --");
        assert_eq!(rows[1].trim_end(), "22:13 <old> old 1");
        assert!(
            !rows.iter().any(|r| r.contains("you are in #a")),
            "below the older lines: {rows:?}"
        );
        // A failed load says why, and how to try again.
        let mut c = chat_in(&["#b"]);
        c.handle_event(&Event::Older { room: room("#b") }, Millis(0));
        c.handle_event(
            &Event::Error {
                kind: None,
                about: natter_core::session::About::Older(room("#b")),
                text: "busy".into(),
            },
            Millis(0),
        );
        let rows = plain(&message_rows(&c, &View::new(), 90, 6, 0).0);
        assert_eq!(
            rows[0],
            "-- could not load older lines of #b: busy (PgUp to try again) --"
        );
    }

    #[test]
    fn a_search_shows_its_hits_in_place_of_the_conversation_until_closed() {
        let mut c = chat_in(&["#a"]);
        c.handle_event(&say("#a", "bob", "the conversation"), Millis(0));
        let words = Text::new("checker").unwrap();
        c.handle_event(
            &Event::Search {
                room: None,
                words: words.clone(),
            },
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        assert!(
            s[1].contains(r#"search: searching for "checker" in all your rooms… (Esc closes)"#),
            "{s:#?}"
        );
        c.handle_event(
            &Event::Found {
                room: None,
                words,
                hits: vec![past_say(30, "borrow checker"), past_say(3, "checker, me?")],
                more: false,
            },
            Millis(0),
        );
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        assert!(
            s[1].contains(r#"search: 2 results for "checker" in all your rooms (Esc closes)"#),
            "{s:#?}"
        );
        assert!(
            s[2].contains("2023-11-14 22:13 #a <old> borrow checker"),
            "{s:#?}"
        );
        assert!(s[3].contains("2023-11-14 22:13 #a <old> checker, me?"));
        assert!(!s.iter().any(|l| l.contains("the conversation")));
        // Many hits scroll; the head stays.
        let (rows, scroll) = search_rows(c.search().unwrap(), c.me(), 5, 90, 2, 0);
        assert_eq!(scroll, 1, "clamped to the last hit");
        assert!(plain(&rows)[0].starts_with("search: "));
        assert!(plain(&rows)[1].contains("checker, me?"));
        c.close_search();
        let s = screen(&c, &View::new(), &InputLine::new(), 100, 8);
        assert!(s.iter().any(|l| l.contains("<bob> the conversation")));
    }
}
