//! What the TUI keeps beyond natter-core's chat model, which holds everything about the chat:
//! view concerns only. How far each conversation is scrolled up, kept still while new lines
//! arrive (the scroll counts rows from the bottom, so a new line adds the rows it takes; older
//! lines put in front change nothing; those
//! `/history` brought while the view was at the bottom are scrolled to), and back at the bottom
//! when a conversation is opened; how far a search's results are scrolled down.

use natter_core::chat::{Change, Chat, ConvId, Line, Scrollback};
use std::collections::HashMap;

/// The TUI's view state.
#[derive(Debug, Default)]
pub struct View {
    /// Rows scrolled up from the bottom per conversation (absent: following new lines).
    scroll: HashMap<ConvId, usize>,
    /// Rooms whose older lines PgUp asked for ([`View::paging`]), until the page comes (with
    /// lines or without) or fails; `true` once
    /// the person scrolled that room back down to its newest lines meanwhile.
    paging: HashMap<ConvId, bool>,
    /// Rows of a search's results scrolled down from their top.
    search: usize,
}

impl View {
    /// Following every conversation's newest lines.
    pub fn new() -> View {
        View::default()
    }

    /// Rows the open conversation is scrolled up (drawing clamps it further).
    pub fn scroll(&self, chat: &Chat) -> usize {
        self.scroll.get(chat.current()).copied().unwrap_or(0)
    }

    /// Scrolls the open conversation up by `rows` (bounded by its line count).
    pub fn scroll_up(&mut self, chat: &Chat, rows: usize) {
        let limit = chat.current_conv().lines().len().saturating_mul(4);
        let s = self.scroll.entry(chat.current().clone()).or_default();
        *s = s.saturating_add(rows).min(limit);
    }

    /// Keeps the open conversation's scroll within `max` rows (what drawing clamped it to), so
    /// lines put in front of it later do not make the view jump.
    pub fn clamp(&mut self, chat: &Chat, max: usize) {
        if let Some(s) = self.scroll.get_mut(chat.current()) {
            *s = (*s).min(max);
        }
    }

    /// Scrolls the open conversation down by `rows`.
    pub fn scroll_down(&mut self, chat: &Chat, rows: usize) {
        if let Some(s) = self.scroll.get_mut(chat.current()) {
            *s = s.saturating_sub(rows);
        }
        if self.scroll(chat) == 0
            && let Some(down) = self.paging.get_mut(chat.current())
        {
            *down = true;
        }
    }

    /// PgUp at the top of the open conversation asked for its older lines: when they come,
    /// a view the person took back down to the newest lines meanwhile stays there.
    pub fn paging(&mut self, chat: &Chat) {
        self.paging.insert(chat.current().clone(), false);
    }

    /// The conversations scrolled up.
    pub fn scrolled(&self) -> Vec<ConvId> {
        self.scroll
            .iter()
            .filter(|(_, s)| **s > 0)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The screen's width changed, so each line's rows: conversation `id`, scrolled up, keeps
    /// the line that was at the bottom of its view there (the scroll, in rows, read as many
    /// rows at the new width showed other lines: a resize lost the person's place). `rows`:
    /// each line's rows at the old width and at the new one, newest first.
    pub fn rewrap(&mut self, id: &ConvId, rows: impl IntoIterator<Item = (usize, usize)>) {
        let Some(s) = self.scroll.get_mut(id).filter(|s| **s > 0) else {
            return;
        };
        let (mut old_below, mut new_below) = (0, 0);
        for (old, new) in rows {
            if old_below + old > *s {
                // The view's bottom is in this line, `hidden` of its rows below it.
                let hidden = *s - old_below;
                *s = new_below + hidden.min(new.saturating_sub(1));
                return;
            }
            old_below += old;
            new_below += new;
            if old_below == *s {
                *s = new_below;
                return;
            }
        }
        // Above the first line (drawing clamps it).
        *s = new_below + (*s - old_below);
    }

    /// Rows a search's results are scrolled down.
    pub fn search_scroll(&self) -> usize {
        self.search
    }

    /// Scrolls a search's results down (+) or up (-) by `rows` (drawing clamps it).
    pub fn scroll_search(&mut self, rows: isize) {
        self.search = self.search.saturating_add_signed(rows).min(10_000);
    }

    /// Follows every change of the model since the last frame ([`View::follow`]). A room whose
    /// older lines are no longer loading once all are followed ends PgUp's paging: the page
    /// came (or failed) without bringing a line, or a PgDn meanwhile would keep the next
    /// `/history` from showing its lines. Not at each `Scrollback` change: the ask's and its
    /// page's may come within one frame, and the model is read as of the frame's end (the
    /// paging ended before the page's lines were followed, and they were scrolled to over a
    /// PgDn).
    pub fn follow_changes(&mut self, chat: &mut Chat, rows_of: impl Fn(&Chat, &Line) -> usize) {
        let mut told = Vec::new();
        while let Some(change) = chat.poll_change() {
            if let Change::Scrollback(conv) = &change {
                told.push(conv.clone());
            }
            let chat: &Chat = chat;
            self.follow(&change, chat, |line| rows_of(chat, line));
        }
        for conv in told {
            if chat
                .conv(&conv)
                .is_none_or(|c| c.scrollback() != Some(Scrollback::Loading))
            {
                self.paging.remove(&conv);
            }
        }
    }

    /// Follows a change of the model: a line arriving in a conversation scrolled up keeps the
    /// view still (`rows_of` says how many rows a line takes on screen); a conversation opened
    /// shows its newest lines; a conversation gone is forgotten; a new search shows its first
    /// results.
    pub fn follow(&mut self, change: &Change, chat: &Chat, rows_of: impl Fn(&Line) -> usize) {
        match change {
            Change::LineAdded { conv, id } | Change::LineInserted { conv, id } => {
                if let Some(s) = self.scroll.get_mut(conv).filter(|s| **s > 0) {
                    // Our own line's echo takes the place of the copy shown waiting at the
                    // bottom, which took as many rows: nothing moves. A line of ours a join
                    // replays (`LineInserted`) is history, no echo: it adds its rows.
                    let echo = matches!(change, Change::LineAdded { .. });
                    let rows = chat
                        .conv(conv)
                        .and_then(|c| c.line(*id))
                        .filter(|l| !(echo && l.mine))
                        .map_or(0, rows_of);
                    *s = s.saturating_add(rows);
                }
            }
            // Older lines while the open conversation follows its newest: `/history` asked for
            // them (PgUp asks only at the top, scrolled up). They went in front, above the
            // screen: go up to them (the main loop clamps this to the top).
            // Not when PgUp asked for them and the person went back down (PgDn) before they
            // came: the view jumped up again, and PgDn seemed not to have worked ("scrolled
            // up 1" in a room a row taller than the screen).
            Change::LinesPrepended { conv, .. } => {
                let went_down = self.paging.remove(conv).unwrap_or(false);
                if conv == chat.current() && self.scroll(chat) == 0 && !went_down {
                    self.scroll_up(chat, usize::MAX);
                }
            }
            Change::Current => {
                self.scroll.remove(chat.current());
            }
            Change::List | Change::All => {
                self.scroll
                    .retain(|id, _| *id == ConvId::Server || chat.conv(id).is_some());
                self.paging.retain(|id, _| chat.conv(id).is_some());
            }
            Change::Search => self.search = 0,
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use natter_core::session::{ConnState, Event};
    use natter_core::wire::{EventKind, RoomEvent};
    use natter_core::{Millis, MsgId, Nick, RoomName, Seq, Text};

    /// Server time of test events: 2023-11-14 22:13:20 UTC.
    pub const AT: Millis = Millis(1_700_000_000_000);

    pub fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    pub fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }
    pub fn rid(s: &str) -> ConvId {
        ConvId::Room(room(s))
    }
    pub fn room_ev(r: &str, from: &str, kind: EventKind) -> Event {
        Event::Room(RoomEvent {
            room: room(r),
            seq: Seq(100),
            at: AT,
            from: nick(from),
            kind,
        })
    }
    pub fn say(r: &str, from: &str, text: &str) -> Event {
        room_ev(
            r,
            from,
            EventKind::Say {
                id: MsgId(1),
                text: Text::new(text).unwrap(),
            },
        )
    }
    pub fn joined(r: &str, members: &[&str]) -> Event {
        Event::Joined {
            room: room(r),
            topic: None,
            members: members.iter().map(|n| nick(n)).collect(),
            seq: Seq(1),
        }
    }
    /// `me`, connected, in `rooms` (the first one open).
    pub fn chat_in(rooms: &[&str]) -> Chat {
        let mut c = Chat::new(nick("me"));
        c.handle_event(&Event::State(ConnState::Connected), Millis(0));
        for r in rooms {
            c.handle_event(&joined(r, &["me"]), Millis(0));
        }
        while c.poll_change().is_some() {}
        c
    }
    /// Folds `ev` in and lets the view follow.
    pub fn apply(c: &mut Chat, v: &mut View, ev: &Event) {
        c.handle_event(ev, Millis(0));
        v.follow_changes(c, |_, _| 1);
    }

    /// A resize kept the scroll's rows, which at another width show other lines: narrower,
    /// the view slid down towards the newest lines, wider, up to older ones. The line at the
    /// bottom of the view stays there.
    #[test]
    fn a_resize_keeps_the_line_at_the_bottom_of_the_view() {
        let mut c = chat_in(&["#a", "#b"]);
        let mut v = View::new();
        for i in 0..10 {
            apply(&mut c, &mut v, &say("#a", "bob", &format!("line {i}")));
        }
        // Newest first: rows at the old width, at the new one.
        let rows = [(1, 2), (2, 3), (1, 1), (3, 5)];
        let at = |v: &mut View, s: usize| {
            v.scroll.insert(rid("#a"), s);
            v.rewrap(&rid("#a"), rows);
            v.scroll(&c)
        };
        // The bottom between two lines: the same line above it.
        assert_eq!(at(&mut v, 3), 5);
        assert_eq!(at(&mut v, 1), 2);
        // In a line: as many of its rows below it as it has now, at most.
        assert_eq!(at(&mut v, 2), 3);
        assert_eq!(at(&mut v, 6), 2 + 3 + 1 + 2);
        // Past the lines counted: as far above them as before.
        assert_eq!(at(&mut v, 9), 11 + 2);
        // At the bottom, and in other conversations: nothing moves.
        assert_eq!(at(&mut v, 0), 0);
        v.scroll.insert(rid("#a"), 3);
        v.rewrap(&rid("#b"), rows);
        assert_eq!(v.scroll(&c), 3);
        assert_eq!(v.scrolled(), [rid("#a")]);
    }

    #[test]
    fn a_scrolled_view_stays_still_and_opening_a_room_shows_its_end() {
        let mut c = chat_in(&["#a", "#b"]);
        let mut v = View::new();
        for i in 0..10 {
            apply(&mut c, &mut v, &say("#a", "bob", &i.to_string()));
        }
        v.scroll_up(&c, 3);
        assert_eq!(v.scroll(&c), 3);
        apply(&mut c, &mut v, &say("#a", "bob", "new"));
        assert_eq!(v.scroll(&c), 4, "kept still");
        v.scroll_up(&c, 10_000);
        assert_eq!(v.scroll(&c), c.current_conv().lines().len() * 4, "bounded");
        c.open(&rid("#b"));
        while let Some(change) = c.poll_change() {
            v.follow(&change, &c, |_| 1);
        }
        assert_eq!(v.scroll(&c), 0);
        c.open(&rid("#a"));
        while let Some(change) = c.poll_change() {
            v.follow(&change, &c, |_| 1);
        }
        assert_eq!(v.scroll(&c), 0, "opened again: at the end");
        v.scroll_up(&c, 2);
        v.scroll_down(&c, 5);
        assert_eq!(v.scroll(&c), 0);
    }

    /// A join's replay goes above the notice of the join (`LineInserted`), below a reader
    /// scrolled up: each line of it moves the view up as much, ours too (a line we sent from
    /// another device while the link was down). Ours counted nothing, as if it were the echo
    /// of a line shown waiting at the bottom, so the view slid under the reader.
    #[test]
    fn a_replayed_line_of_ours_keeps_a_scrolled_view_still() {
        let mut c = chat_in(&["#a"]);
        let mut v = View::new();
        for i in 0..10 {
            apply(&mut c, &mut v, &say("#a", "bob", &i.to_string()));
        }
        v.scroll_up(&c, 3);
        let ev = |seq: u64, from: &str, text: &str| {
            Event::Room(natter_core::wire::RoomEvent {
                room: room("#a"),
                seq: Seq(seq),
                at: AT,
                from: nick(from),
                kind: EventKind::Say {
                    id: MsgId(seq),
                    text: Text::new(text).unwrap(),
                },
            })
        };
        // Back after a drop: joined again (seq 203), the replay brings what was missed.
        apply(
            &mut c,
            &mut v,
            &Event::Joined {
                room: room("#a"),
                topic: None,
                members: vec![nick("me"), nick("bob")],
                seq: Seq(203),
            },
        );
        let after_notice = v.scroll(&c);
        assert!(after_notice > 3);
        apply(&mut c, &mut v, &ev(201, "bob", "while away"));
        apply(&mut c, &mut v, &ev(202, "me", "from my phone"));
        let lines = c.current_conv().lines();
        let texts: Vec<String> = lines
            .iter()
            .rev()
            .take(3)
            .map(|l| format!("{:?}", l.kind))
            .collect();
        assert!(texts[0].contains("you are in #a"), "{texts:?}");
        assert!(
            lines.iter().rev().nth(1).is_some_and(|l| l.mine),
            "{texts:?}"
        );
        assert_eq!(v.scroll(&c), after_notice + 2, "kept still");
    }

    /// Three of bob's older lines in #a ("old"), from seq `from`, as history brings them.
    fn older(from: u64) -> Event {
        Event::Past {
            room: room("#a"),
            events: (from..from + 3)
                .map(|seq| natter_core::wire::RoomEvent {
                    room: room("#a"),
                    seq: Seq(seq),
                    at: AT,
                    from: nick("bob"),
                    kind: EventKind::Say {
                        id: MsgId(seq),
                        text: Text::new("old").unwrap(),
                    },
                })
                .collect(),
            at_start: false,
            oldest: None,
        }
    }

    /// `/history` typed while the view follows the newest lines: the older lines go in front
    /// of the conversation, above the screen, so the view goes up to them (it stayed at the
    /// bottom, and the command seemed to do nothing). Older lines PgUp asked for at the top
    /// leave a scrolled view where it is.
    /// In #a, bob's lines 10 to 19, followed to the bottom.
    fn ten_lines_of_a() -> (Chat, View) {
        let mut c = chat_in(&["#a"]);
        let mut v = View::new();
        for i in 10..20 {
            apply(&mut c, &mut v, &say("#a", "bob", &i.to_string()));
        }
        (c, v)
    }

    #[test]
    fn older_lines_typed_for_at_the_bottom_are_shown() {
        let (mut c, mut v) = ten_lines_of_a();
        assert_eq!(v.scroll(&c), 0);
        apply(&mut c, &mut v, &older(5));
        assert!(v.scroll(&c) > 0, "up to the lines /history brought");
        // Scrolled up already (PgUp at the top): kept where it was.
        v.scroll_down(&c, usize::MAX);
        v.scroll_up(&c, 4);
        apply(&mut c, &mut v, &older(2));
        assert_eq!(v.scroll(&c), 4);
    }

    /// PgUp at the top asked for older lines; PgDn took the view back to the newest lines
    /// before they came; when they came the view jumped up to them, as for `/history`, and the
    /// person read "scrolled up" after pressing PgDn. It stays down now; PgUp's lines while
    /// the view stays up, and `/history`'s, are as before.
    #[test]
    fn older_lines_paged_for_do_not_undo_a_pgdn_pressed_before_they_came() {
        let (mut c, mut v) = ten_lines_of_a();
        v.scroll_up(&c, 2);
        v.paging(&c);
        v.scroll_down(&c, 20);
        apply(&mut c, &mut v, &older(6));
        assert_eq!(v.scroll(&c), 0, "PgDn holds");
        // Asked for and waited for up there: it stays up (lines in front move nothing).
        v.scroll_up(&c, 2);
        v.paging(&c);
        apply(&mut c, &mut v, &older(3));
        assert_eq!(v.scroll(&c), 2);
        // At the bottom, asked for by PgUp (everything fitted) or typed: shown.
        v.scroll_down(&c, 20);
        v.paging(&c);
        apply(&mut c, &mut v, &older(0));
        assert!(v.scroll(&c) > 0);
    }

    /// PgUp at the top asked for older lines, PgDn went back down, and the page brought
    /// nothing new (lines held already, or none older): the room stayed marked as paged for,
    /// so the next `/history`, typed at the bottom, did not go up to its lines.
    #[test]
    fn a_page_that_brings_nothing_ends_the_paging() {
        let (mut c, mut v) = ten_lines_of_a();
        apply(&mut c, &mut v, &older(5));
        v.scroll_down(&c, usize::MAX);
        // PgUp at the top, then PgDn before the page came.
        v.scroll_up(&c, 2);
        v.paging(&c);
        v.scroll_down(&c, 20);
        apply(&mut c, &mut v, &Event::Older { room: room("#a") });
        // Nothing older than what is held.
        apply(&mut c, &mut v, &older(5));
        assert_eq!(v.scroll(&c), 0, "PgDn holds");
        // `/history` typed at the bottom: shown.
        apply(&mut c, &mut v, &Event::Older { room: room("#a") });
        apply(&mut c, &mut v, &older(1));
        assert!(v.scroll(&c) > 0, "up to the lines /history brought");
    }

    /// The ask and its page came within one frame (the main loop handles several events, then
    /// follows their changes): the first `Scrollback` change, the ask's, was read with the
    /// page already in, ended the paging before the page's lines were followed, and the view
    /// jumped up to them though the person had gone back down (PgDn).
    #[test]
    fn a_page_within_the_frame_of_its_ask_keeps_pgdn() {
        let (mut c, mut v) = ten_lines_of_a();
        v.scroll_up(&c, 2);
        v.paging(&c);
        v.scroll_down(&c, 20);
        c.handle_event(&Event::Older { room: room("#a") }, Millis(0));
        c.handle_event(&older(5), Millis(0));
        v.follow_changes(&mut c, |_, _| 1);
        assert_eq!(v.scroll(&c), 0, "PgDn holds");
        // The page is over: `/history` typed at the bottom goes up to its lines.
        c.handle_event(&Event::Older { room: room("#a") }, Millis(0));
        c.handle_event(&older(2), Millis(0));
        v.follow_changes(&mut c, |_, _| 1);
        assert!(v.scroll(&c) > 0, "up to the lines /history brought");
    }
}
