// natter's page: the shell around core's client (compiled to wasm, see www/src/lib.rs).
//
// The page owns the WebSocket, one timer and the DOM. The wasm `Client` owns everything else:
// the protocol (when to connect, what to send, when to wake up) and the chat model (rooms,
// members, lines in words, unread and mention counts, lines waiting for the server). This file
// carries bytes, applies the model's changes to the DOM (each change touches only what changed),
// and keeps view concerns only: the DOM drawn so far, scroll positions, the input line and its
// history, which drawer is open. Scrolling to the top of a room asks the model for older lines
// (it knows below which seq, and whether any are left); they go in front of the room's history
// with what was being read kept in place. A log scrolled up stays where its reader left it, shown
// or not (lines arriving, inserted above, trimmed, another conversation opened and this one
// again), with a "new messages below" cue; one at the bottom follows its newest lines. Every
// piece of text is put in the DOM as text, never as HTML.

import init, {
  Client,
  browser_device_label,
  carries_password,
  kept_session_fresh,
  nick_error,
  password_error,
} from "./natter_web.js";

const MAX_HISTORY = 100; // typed lines remembered for Up/Down
const MAX_NOTES = 100; // notifications remembered for the tests
const MAX_TOPS = 100; // what the tops of logs said, remembered for the tests
const NEAR_TOP = 48; // pixels from the top of a log at which older lines are asked for
// Where "remember me" keeps the account and its device key (never the password).
const KEPT_SIGN_IN = "natter.signin";
// Where a guest's page keeps its session for a reload (sessionStorage: this tab only, gone with
// it): the nick, the resume token, its rooms and the last seq seen in each, and the id of its
// last message (the reloaded page numbers its own after it).
const KEPT_SESSION = "natter.session";
// The same, for the browser (localStorage), when a guest's tab goes: a tab closed by mistake
// and opened again resumes it, as a reload does, while the server still holds it (its resume
// window, RESUME_GRACE: 2 minutes; kept_session_fresh says). Taken by the first page that starts
// after, at most once.
const KEPT_LAST = "natter.lastSession";

const $ = (id) => document.getElementById(id);
const ui = {
  app: $("app"),
  convName: $("conv-name"),
  topic: $("topic"),
  status: $("status"),
  banner: $("banner"),
  logs: $("logs"),
  roomList: $("room-list"),
  dmList: $("dm-list"),
  memberList: $("member-list"),
  memberCount: $("member-count"),
  meNick: $("me-nick"),
  notify: $("notify"),
  input: $("input"),
  inputForm: $("input-form"),
  joinForm: $("join-form"),
  joinInput: $("join-input"),
  nickDialog: $("nick-dialog"),
  nickForm: $("nick-form"),
  nickInput: $("nick-input"),
  nickError: $("nick-error"),
  nickStatus: $("nick-status"),
  passwordInput: $("password-input"),
  rememberInput: $("remember-input"),
  meAccount: $("me-account"),
  newBelow: $("new-below"),
  signOut: $("sign-out"),
  signInOpen: $("sign-in-open"),
  devicesOpen: $("devices-open"),
  devicesPanel: $("devices-panel"),
  devicesTitle: $("devices-title"),
  devicesList: $("devices-list"),
  devicesClose: $("devices-close"),
  scrim: $("scrim"),
  searchForm: $("search-form"),
  searchInput: $("search-input"),
  searchPanel: $("search-panel"),
  searchTitle: $("search-title"),
  searchHits: $("search-hits"),
  searchNote: $("search-note"),
  searchClose: $("search-close"),
  settingsToggle: $("settings-toggle"),
  settingsPanel: $("settings-panel"),
  settingsSummary: $("settings-summary"),
  settingsOps: $("settings-ops"),
  keyForm: $("key-form"),
  keyInput: $("key-input"),
  limitForm: $("limit-form"),
  limitInput: $("limit-input"),
  banList: $("ban-list"),
  muteList: $("mute-list"),
  inviteForm: $("invite-form"),
  inviteInput: $("invite-input"),
  banForm: $("ban-form"),
  banMask: $("ban-mask"),
  banFor: $("ban-for"),
  memberMenu: $("member-menu"),
  memberMenuNick: $("member-menu-nick"),
  memberMenuItems: $("member-menu-items"),
  memberMenuDuration: $("member-menu-duration"),
};

let client = null; // the wasm Client, once a nick is chosen
// A sign-in or registration asked in the dialog ("sign-in", "register"), until the server
// answers: the dialog stays open meanwhile, busy (one request at a time: its buttons and
// fields wait for the answer, so a double click or Enter then a click asks nothing twice), and
// a refusal is said in it.
let dialogAsk = null;
// The dialog's request was asked on a guest's own session (its page opened the dialog): the
// guest signs in where it stands, its rooms and conversations kept; refused, it stays the
// guest it was. Otherwise (the dialog at the start) the request has a client of its own.
let dialogHere = false;
// A guest's registration under another nick than its own: `{ nick, password, remember,
// from }`, asked once the guest's rename to that nick is through.
let dialogRegister = null;
// The nick a guest had before its rename for the registration asked, until that is answered:
// refused, the guest goes back to it (it goes on as the guest it was).
let renamedFrom = null;
let ws = null; // the current WebSocket; callbacks from older ones are ignored
let deaf = null; // a socket whose messages are ignored (natterDebug.deafen, for the tests)
let closeAfterFlush = false;
let timer = null;
let bannerTimer = null;

// The DOM drawn for each conversation so far: key -> { log, top, lines, outbox, lastDay, place,
// reading, size, unseen }. `place`: where the reader left the log when it was last hidden (see
// placeOf; null: at its newest lines, which it follows). `reading`: the same, of the log on
// screen at its last scroll, for a resize; `size`: its size then (sizeOf). `unseen`: messages that came below while the reader
// was scrolled up, until they reach the bottom (the cue counts them).
const logs = new Map();
let shown = null; // key of the conversation whose log is on screen

const history = [];
let historyPos = 0;
let draft = "";

// The clocks. Core's `now` times deadlines (the keepalive, reconnects, when a waiting line looks
// pending): the monotonic clock, in milliseconds since the Unix epoch as of the page's start
// (`performance.timeOrigin`), which the computer's clock set back or forward does not move. (On
// `Date.now()`, until the fortieth session, a clock set back an hour held the keepalive and the
// next reconnect back an hour, and one set forward fired them at once.) The wall clock goes to
// the model with every reading, for the times of the lines it makes here; the server's lines
// carry the server's times.
function now() {
  const t = performance.timeOrigin + performance.now();
  client?.set_wall_clock(Date.now(), t);
  return t;
}

// --- small helpers ------------------------------------------------------------------------------

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A stable colour per nick: FNV-1a of the folded nick picks a hue (the TUI hashes the same way).
function nickHue(nick) {
  let h = 0x811c9dc5;
  for (const c of nick.toLowerCase()) {
    h ^= c.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 360;
}

function hhmm(at) {
  const d = new Date(at);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function dayLabel(at) {
  const d = new Date(at);
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return d.toLocaleDateString(undefined, { weekday: "long", month: "long", day: "numeric" });
}

// `YYYY-MM-DD HH:MM`, local time: for lines from any day (search hits).
function dateTime(at) {
  const d = new Date(at);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hhmm(at)}`;
}

function atBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 60;
}

// Where the reader is in a log on screen: null at the bottom (it follows the newest lines),
// else the first line or day mark whose top is on screen, and how far it is below the
// log's (a hidden log has no scroll position of its own: the browser forgets it, and lines come
// and go meanwhile, above and below, so a number of pixels would no longer point at the same
// place).
function placeOf(d) {
  const log = d.log;
  if (log.hidden || atBottom(log)) return null;
  const top = log.getBoundingClientRect().top;
  const items = [...d.lines.children, ...d.outbox.children];
  // The first whose top is on screen (they are in order: halved each step), within a pixel (a
  // line scrolled to the top is a fraction of one off). Not one whose bottom only is, a sliver
  // of it left at the top: it keeps the height of its top, and when it wraps anew (a resize) the
  // line below it, the one read, would move by as much as it grew or shrank.
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].getBoundingClientRect().top > top - 1) hi = mid;
    else lo = mid + 1;
  }
  const at = items[lo] ?? items[items.length - 1];
  return at ? { at, offset: at.getBoundingClientRect().top - top } : { at: null, offset: 0 };
}

// A log's size on screen: lines wrap anew when it changes, and a place in pixels moves.
function sizeOf(log) {
  return `${log.clientWidth}x${log.clientHeight}`;
}

// Scrolls a log on screen back to `place` (from placeOf): the same line at the same height;
// at the bottom for null; at the top if that line is gone (trimmed away meanwhile).
function restorePlace(d, place) {
  const log = d.log;
  if (place === null) {
    log.scrollTop = log.scrollHeight;
  } else if (!place.at?.isConnected) {
    log.scrollTop = 0;
  } else {
    const now = place.at.getBoundingClientRect().top - log.getBoundingClientRect().top;
    log.scrollTop += now - place.offset;
  }
}

// The "new messages below" cue of the log on screen: shown while its reader is scrolled up
// and messages came below since; a click goes down to them.
function renderCue() {
  const d = shown === null ? undefined : logs.get(shown);
  const n = d && !d.log.hidden && !atBottom(d.log) ? d.unseen : 0;
  ui.newBelow.hidden = n === 0;
  ui.newBelow.textContent = n === 0 ? "" : n === 1 ? "1 new message below"
    : `${n} new messages below`;
}

// The log on screen to its newest lines.
function toBottom() {
  const d = shown === null ? undefined : logs.get(shown);
  if (d) d.log.scrollTop = d.log.scrollHeight;
}

ui.newBelow.addEventListener("click", () => {
  toBottom();
  ui.input.focus();
});

// --- lines: one model line, one element ------------------------------------------------------

// The web addresses in `text`: `[start, end)` of each `http://` or `https://` one, without the
// punctuation that ends a sentence around it (`see https://x.org/a.` links `https://x.org/a`, a `)`
// only when the address opened one). Only these two schemes are ever links: `javascript:`,
// `data:` and the rest stay text, whatever a message says.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
function linkRanges(text) {
  const out = [];
  for (const m of text.matchAll(URL_RE)) {
    let u = m[0];
    for (;;) {
      const last = u[u.length - 1];
      if (".,;:!?'*".includes(last)) u = u.slice(0, -1);
      else if (last === ")" && u.split("(").length < u.split(")").length) u = u.slice(0, -1);
      else break;
    }
    let url;
    try {
      url = new URL(u);
    } catch {
      continue;
    }
    if ((url.protocol === "http:" || url.protocol === "https:") && url.host) {
      out.push([m.index, m.index + u.length]);
    }
  }
  return out;
}

// `text[a, b)` into `parent`, the parts of it inside `spans` (mentions of our nick) marked.
function appendMarked(parent, text, spans, a, b) {
  let at = a;
  for (const [start, end] of spans) {
    const s = Math.max(start, at);
    const e = Math.min(end, b);
    if (s >= e) continue;
    parent.append(text.slice(at, s), el("mark", "me", text.slice(s, e)));
    at = e;
  }
  parent.append(text.slice(at, b));
}

// `text` into `parent`, its web addresses as links that open in a new tab, which gets neither
// this page (`noopener`) nor its address (`noreferrer`), and its mentions marked.
function appendLinked(parent, text, spans = []) {
  let at = 0;
  for (const [start, end] of linkRanges(text)) {
    appendMarked(parent, text, spans, at, start);
    const a = el("a", "link");
    a.href = text.slice(start, end);
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    appendMarked(a, text, spans, start, end);
    parent.append(a);
    at = end;
  }
  appendMarked(parent, text, spans, at, text.length);
}

// Chat text with its links and the mentions of our nick marked (the model says where). Its
// direction is its own (`dir=auto`: from its first strong character), isolated from the nick and
// time around it: a line in Hebrew or Arabic reads right to left, its end punctuation where it
// belongs, and cannot reorder what is around it. A search hit's text has no links: the whole hit
// is one button (which opens its room at the line).
function chatText(l, links = true) {
  const t = el("span", "text");
  t.dir = "auto";
  if (links) appendLinked(t, l.text, l.spans);
  else appendMarked(t, l.text, l.spans, 0, l.text.length);
  return t;
}

// The day marks say "Today" and "Yesterday" of the day they were drawn on: once the day has
// changed (a page left open overnight), every mark is said again, before a new one is drawn (or
// two days would both be "Today") and at midnight for a page that hears nothing then.
let labelledOn = new Date().toDateString();
function freshDayLabels() {
  const today = new Date().toDateString();
  if (today === labelledOn) return;
  labelledOn = today;
  for (const m of document.querySelectorAll(".day")) m.textContent = dayLabel(Number(m.dataset.at));
}
(function atMidnight() {
  const n = new Date();
  const next = new Date(n.getFullYear(), n.getMonth(), n.getDate() + 1);
  setTimeout(() => {
    freshDayLabels();
    atMidnight();
  }, next - n + 1000);
})();
// A tab asleep past midnight (its timers held back) catches up when it is looked at again.
document.addEventListener("visibilitychange", freshDayLabels);

function dayEl(at) {
  freshDayLabels();
  const day = el("div", "day", dayLabel(at));
  day.dataset.day = new Date(at).toDateString();
  day.dataset.at = String(at);
  return day;
}

function lineEl(l) {
  const line = el("div", `line ${l.kind}`);
  line.dataset.id = String(l.id);
  line.dataset.at = String(l.at);
  line.dataset.day = new Date(l.at).toDateString();
  if (l.seq !== undefined) line.dataset.seq = String(l.seq);
  line.classList.toggle("mine", l.mine);
  line.classList.toggle("mention", l.mention);
  const time = el("time", "time", hhmm(l.at));
  time.dateTime = new Date(l.at).toISOString();
  time.title = new Date(l.at).toLocaleString();
  line.append(time);
  if (l.kind === "say" || l.kind === "act" || l.kind === "said-notice") {
    const who = el("span", "nick", l.from);
    who.style.setProperty("--h", String(nickHue(l.from)));
    line.append(who, chatText(l));
  } else if (l.kind === "rooms") {
    line.classList.add("note");
    const text = el("span", "text", l.rooms.length ? "rooms: " : l.text);
    for (const r of l.rooms) {
      const b = el("button", "room-link", `${r.room} (${r.members})`);
      b.type = "button";
      b.addEventListener("click", () => input(`/join ${r.room}`));
      text.append(b);
    }
    line.append(text);
  } else {
    line.classList.add("note");
    if (l.kind === "event") line.classList.add("quiet");
    // `/help` lists commands as aligned columns: keep them aligned.
    if (l.kind === "notice" && l.text.startsWith("/")) line.classList.add("help");
    line.append(el("span", "text", l.text));
  }
  if (l.failed !== undefined) {
    line.classList.add("failed");
    line.append(el("span", "why", `not delivered: ${l.failed}`));
  }
  return line;
}

// --- conversations: their DOM, drawn when first shown, then kept up by changes -----------------

function logFor(key) {
  let d = logs.get(key);
  if (d) return d;
  const conv = client.conversation(key);
  if (!conv) return null;
  const log = el("div", "log");
  log.dataset.conv = key;
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.hidden = true;
  const top = el("div", "history-top");
  top.hidden = true;
  const lines = el("div", "lines");
  const outbox = el("div", "outbox");
  log.append(top, lines, outbox);
  ui.logs.append(log);
  d = { key, log, top, lines, outbox, lastDay: "", place: null, reading: null, size: "", unseen: 0 };
  logs.set(key, d);
  for (const l of conv.lines) appendLine(d, l);
  renderOutbox(d, conv.outgoing);
  renderTop(d, conv.scrollback);
  d.size = sizeOf(log);
  // Near the top of a room: its older lines, if the model says there are any to load.
  log.addEventListener("scroll", () => {
    if (log.hidden) return;
    // Where it is read, for a resize: not from a scroll the resize itself made (the browser
    // keeps the pixels, and clamps them when the log gets shorter), which comes before it.
    if (d.size === sizeOf(log)) d.reading = placeOf(d);
    if (log.scrollTop < NEAR_TOP && d.top.dataset.state === "more") loadOlder(key);
    if (atBottom(log)) d.unseen = 0;
    if (key === shown) renderCue();
  });
  return d;
}

// A new line at the end: a log at its newest lines follows it; one scrolled up (on screen, or
// left so) stays where it is read, and counts a message for its cue.
function appendLine(d, l) {
  const stick = d.log.hidden ? d.place === null : atBottom(d.log);
  const day = new Date(l.at).toDateString();
  if (day !== d.lastDay) {
    d.lastDay = day;
    d.lines.append(dayEl(l.at));
  }
  d.lines.append(lineEl(l));
  if (stick) {
    if (!d.log.hidden) d.log.scrollTop = d.log.scrollHeight;
  } else if ((l.kind === "say" || l.kind === "act" || l.kind === "said-notice") && !l.mine) {
    // Others' messages only: one's own (said by a command, or from another device) is no news.
    d.unseen += 1;
    if (d.key === shown) renderCue();
  }
}

// The model dropped its `n` oldest lines: so does the DOM (with day marks left without lines).
// A reader scrolled up keeps their place (what went was above it).
function trimLines(d, n) {
  const place = placeOf(d);
  for (let i = 0; i < n && d.lines.firstElementChild; ) {
    if (d.lines.firstElementChild.classList.contains("line")) i += 1;
    d.lines.firstElementChild.remove();
  }
  while (d.lines.firstElementChild?.classList.contains("day")
    && !d.lines.firstElementChild.nextElementSibling?.classList.contains("line")) {
    d.lines.firstElementChild.remove();
  }
  if (place !== null) restorePlace(d, place);
}

// Older lines (oldest first) go in front of the line with id `before` (at the end without one),
// with day marks where days change. What the person was reading stays where it was on screen:
// the distance from the bottom is kept, as everything added is above it. Older lines that come
// while the log follows its newest were typed for (`/history`; scrolling asks at the top): the
// log goes up to the first of them, or the command would seem to do nothing.
// `inserted`: a line of a join's replay, put above the notice of the join, near the bottom, is
// history, not typed for: nothing is revealed; a log that follows its newest lines stays at the
// bottom, and one scrolled up where it was (above the screen the distance from the bottom is
// kept, below it the distance from the top).
function prependLines(d, before, lines, inserted = false) {
  const log = d.log;
  const reveal = !inserted && !log.hidden && atBottom(log) && log.scrollTop >= NEAR_TOP;
  const stick = inserted && (log.hidden || atBottom(log));
  const fromBottom = log.scrollHeight - log.scrollTop;
  const next = before === undefined ? null : d.lines.querySelector(`.line[data-id="${before}"]`);
  const onScreenOrBelow = inserted && !log.hidden
    && (!next || next.getBoundingClientRect().top >= log.getBoundingClientRect().top);
  const scrollTop = log.scrollTop;
  // A day mark right before that line belongs to it: the older lines go before the mark.
  let at = next;
  while (at?.previousElementSibling?.classList.contains("day")) at = at.previousElementSibling;
  const prev = at ? at.previousElementSibling : d.lines.lastElementChild;
  let day = prev?.dataset.day ?? "";
  const frag = document.createDocumentFragment();
  for (const l of lines) {
    const lineDay = new Date(l.at).toDateString();
    if (lineDay !== day) {
      day = lineDay;
      frag.append(dayEl(l.at));
    }
    frag.append(lineEl(l));
  }
  const first = frag.querySelector(".line");
  d.lines.insertBefore(frag, at);
  if (!next) {
    d.lastDay = day;
  } else if (at !== next && at.dataset.day === day) {
    at.remove(); // the same day goes on: no second mark
  } else if (at === next && next.dataset.day !== day) {
    d.lines.insertBefore(dayEl(Number(next.dataset.at)), next);
  }
  if (stick) log.scrollTop = log.scrollHeight;
  else if (onScreenOrBelow) log.scrollTop = scrollTop;
  else log.scrollTop = log.scrollHeight - fromBottom;
  if (reveal && first) {
    log.scrollTop += first.getBoundingClientRect().top - log.getBoundingClientRect().top;
  }
}

// The top of a room's log: what the model says about older lines (absent for other
// conversations). `more`: a button (scrolling up does the same); `failed`: why, and a button to
// try again.
const tops = []; // what the tops said, for the tests
function renderTop(d, sb) {
  d.top.hidden = !sb;
  if (!sb) return;
  // A page asked for at the bottom (`/history` typed there) that brought nothing: the log
  // goes up to where it says why (the beginning, or that older lines are no longer kept),
  // or the command would seem to do nothing. Lines it brought were shown (prependLines).
  const reveal = d.top.dataset.state === "loading" && (sb.state === "start" || sb.state === "gone")
    && !d.log.hidden && atBottom(d.log);
  d.top.className = `history-top ${sb.state}`;
  d.top.dataset.state = sb.state;
  const parts = [];
  if (sb.text !== undefined) parts.push(el("span", "label", sb.text));
  if (sb.state === "more" || sb.state === "failed") {
    const b = el("button", "", sb.state === "more" ? "Load older lines" : "Try again");
    b.type = "button";
    b.addEventListener("click", () => loadOlder(d.key));
    parts.push(b);
  }
  d.top.replaceChildren(...parts);
  if (reveal) d.log.scrollTop = 0;
  if (tops.length < MAX_TOPS) tops.push(`${d.key} ${sb.state}: ${sb.text ?? ""}`);
}

function loadOlder(key) {
  if (!client) return;
  client.load_older(key, now());
  pump();
}

// --- search: the model's results in a panel above the conversation -----------------------------

function hitEl(h) {
  const li = el("li", `hit ${h.line.kind}`);
  li.title = h.words;
  const time = el("time", "time", dateTime(h.line.at));
  time.dateTime = new Date(h.line.at).toISOString();
  li.append(time, el("span", "room", h.room));
  if (h.line.from !== undefined) {
    const who = el("span", "nick", h.line.from);
    who.style.setProperty("--h", String(nickHue(h.line.from)));
    li.append(who);
  }
  li.append(chatText(h.line, false));
  // A hit opens its room at the line (click, or Enter or Space from the keyboard).
  li.tabIndex = 0;
  li.setAttribute("role", "button");
  li.addEventListener("click", () => openHit(h));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      openHit(h);
    }
  });
  return li;
}

// The hit being gone to: its room is open, and its older lines are loaded (a page at a time,
// as scrolling up does) until the hit's line is among them; then it is scrolled to and
// highlighted for a moment. What stops it short is said under the search's title.
let seeking = null; // { key, seq }

function openHit(h) {
  if (!client) return;
  if (!client.open(h.room)) {
    // Left since the search (or kicked): nothing to open.
    ui.searchNote.textContent = `you are not in ${h.room}`;
    ui.searchNote.hidden = false;
    return;
  }
  seeking = h.line.seq === undefined ? null : { key: h.room, seq: h.line.seq };
  ui.searchNote.hidden = true;
  pump(); // the room is shown (where it was read), then seekHit goes on from there
}

function seekHit() {
  if (!seeking) return;
  const { key, seq } = seeking;
  const d = logs.get(key);
  if (!d || shown !== key) {
    seeking = null; // another conversation was opened meanwhile
    return;
  }
  const line = d.lines.querySelector(`.line[data-seq="${seq}"]`);
  if (line) {
    seeking = null;
    line.scrollIntoView({ block: "center" });
    line.classList.remove("found");
    void line.offsetWidth; // restarts the highlight when the same hit is opened again
    line.classList.add("found");
    setTimeout(() => line.classList.remove("found"), 2500);
    return;
  }
  const first = d.lines.querySelector(".line[data-seq]");
  const state = d.top.dataset.state;
  let why = null;
  if (first && Number(first.dataset.seq) < seq) {
    why = `that line of ${key} is not here: history was lost around it`;
  } else if (state === "more") {
    loadOlder(key);
    return;
  } else if (state === "loading") {
    return; // the next page is on its way
  } else if (state === "gone") {
    why = `that line is older than what the server keeps of ${key}`;
  } else if (state === "full") {
    why = `that line is further back than this page keeps of ${key}`;
  } else if (state === "failed") {
    why = `could not load the lines of ${key} up to it (see the top of ${key})`;
  } else {
    why = `that line is no longer in ${key}`;
  }
  seeking = null;
  ui.searchNote.textContent = why;
  ui.searchNote.hidden = false;
}

function renderSearch() {
  const s = client.search_view();
  ui.searchPanel.hidden = !s;
  if (!s) return;
  ui.searchPanel.dataset.state = s.state;
  ui.searchPanel.classList.toggle("failed", s.state === "failed");
  ui.searchTitle.textContent = s.title;
  ui.searchHits.replaceChildren(...s.hits.map(hitEl));
  ui.searchNote.hidden = true;
}

function closeSearch() {
  if (!client) return;
  client.close_search();
  pump();
}

ui.searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const words = ui.searchInput.value;
  if (!client || !words.trim()) return;
  const why = client.search(words, undefined, now());
  if (why !== undefined) {
    // The words cannot be searched for (too long): said where results would be.
    ui.searchPanel.hidden = false;
    ui.searchPanel.classList.add("failed");
    ui.searchTitle.textContent = why;
    ui.searchHits.replaceChildren();
  }
  pump();
});
ui.searchClose.addEventListener("click", closeSearch);
document.addEventListener("keydown", (e) => {
  // (A drawer open on a phone is closed first, below.)
  if (e.key === "Escape" && !ui.searchPanel.hidden && !ui.nickDialog.open && ui.scrim.hidden) {
    closeSearch();
  }
});

// Lines typed here that the server has not acknowledged: after the real ones. They look like
// sent lines until the model says they look pending (offline, or waiting noticeably long).
function renderOutbox(d, outgoing) {
  const stick = atBottom(d.log) || d.log.hidden;
  d.outbox.replaceChildren(
    ...outgoing.map((o) => {
      const line = lineEl(o.line);
      line.classList.add("outgoing");
      line.dataset.msg = String(o.id);
      if (o.pending) {
        line.classList.add("pending");
        line.title = "not sent yet: goes out when the server can take it";
      }
      return line;
    }),
  );
  if (stick) d.log.scrollTop = d.log.scrollHeight;
}

function convButton(c) {
  const li = el("li", c.unread ? "has-unread" : "");
  const b = el("button");
  b.type = "button";
  b.dataset.conv = c.key;
  if (c.key === shown) b.setAttribute("aria-current", "true");
  b.append(el("span", "name", c.label), el("span", "badge"));
  b.addEventListener("click", () => {
    client.open(c.key);
    pump();
    ui.input.focus();
  });
  li.append(b);
  setBadge(li, c.unread, c.mentions);
  return li;
}

function setBadge(li, unread, mentions) {
  li.classList.toggle("has-unread", unread > 0);
  const badge = li.querySelector(".badge");
  badge.textContent = unread ? String(unread) : "";
  badge.hidden = !unread;
  badge.classList.toggle("mention", mentions > 0);
}

function renderList() {
  const convs = client.conversations();
  ui.roomList.replaceChildren(...convs.filter((c) => c.kind === "room").map(convButton));
  ui.dmList.replaceChildren(...convs.filter((c) => c.kind === "direct").map(convButton));
  const unread = convs.some((c) => c.unread > 0);
  $("toggle-rooms").classList.toggle("has-unread", unread);
}

// Every listed conversation has its log (drawn whole from the model when it first appears, then
// kept up by changes); the logs of conversations that are gone go too.
function syncLogs() {
  const keep = new Set(client.conversations().map((c) => c.key));
  for (const key of keep) logFor(key);
  for (const [key, d] of logs) {
    if (!keep.has(key) && key !== client.current()) {
      d.log.remove();
      logs.delete(key);
    }
  }
}

function renderCounts(ch) {
  const b = document.querySelector(`.conv-list button[data-conv="${CSS.escape(ch.key)}"]`);
  if (b) setBadge(b.parentElement, ch.unread, ch.mentions);
  const unread = [...document.querySelectorAll(".conv-list .badge")].some((x) => !x.hidden);
  $("toggle-rooms").classList.toggle("has-unread", unread);
}

function renderHeader() {
  const c = client.conversations().find((x) => x.key === shown);
  ui.convName.textContent = c ? c.label : "natter";
  const topic = c?.kind === "room" ? (c.topic ?? "") : "";
  ui.topic.textContent = !c ? "" : c.kind === "room" ? (topic ? "" : "no topic — set one with /topic text") : "direct messages";
  if (topic) appendLinked(ui.topic, topic);
  // Someone's words: their direction is theirs, as a line's text is (chatText).
  ui.topic.dir = topic ? "auto" : "";
  ui.topic.title = topic;
  ui.input.placeholder = !c
    ? "Say something… (/help for commands)"
    : c.kind === "room"
      ? `Message ${c.label}… (/help for commands)`
      : `Message ${c.label} directly…`;
}

// A member row: its mark (~ founder, @ operator, + voiced) and nick, dimmed while the member is
// away (the away message in its tooltip). A click messages the member; for an operator of the
// room it opens the member menu (message, kick, ban, mute, op...).
function memberEl(nick) {
  const li = el("li");
  const b = el("button");
  b.type = "button";
  b.dataset.nick = nick;
  const mine = nick.toLowerCase() === client.me().toLowerCase();
  b.title = mine ? "you" : `message ${nick}`;

  const role = shown !== null && shown.startsWith("#") ? client.role(shown, nick) : "member";
  const mark = el("span", "mark", MARKS[role] ?? "");
  mark.title = role === "member" ? "" : role;
  const name = el("span", "nick", nick);
  name.style.setProperty("color", `hsl(${nickHue(nick)} 60% var(--nick-l))`);
  const away = shown !== null && shown.startsWith("#") ? client.away(shown, nick) : undefined;
  if (away !== undefined) {
    li.classList.add("away");
    name.title = `away: ${away}`;
  }
  b.append(mark, name);
  if (!mine) {
    b.addEventListener("click", () => {
      const room = shown;
      if (room?.startsWith("#") && client.policy(room)?.am_op) {
        openMemberMenu(room, nick, b);
        return;
      }
      messageMember(nick);
    });
  }
  li.append(b);
  return li;
}

const MARKS = { founder: "~", operator: "@", voiced: "+" };

function messageMember(nick) {
  client.open_direct(nick);
  pump();
  ui.input.focus();
}

// In a big room the server sums joins and parts up and the list may hold fewer than the room
// does: the count is the server's, and a button asks for the list (`/who`).
function renderMembers(members, count = members.length) {
  ui.memberList.replaceChildren(...members.map(memberEl));
  if (count > members.length) {
    const li = el("li", "members-more");
    const b = el("button", "", `${count - members.length} more not listed: list members`);
    b.type = "button";
    b.addEventListener("click", () => {
      client.handle_input(`/who ${shown}`, now());
      pump();
    });
    li.append(b);
    ui.memberList.append(li);
  }
  ui.memberCount.textContent = count ? String(count) : "";
}

function renderMemberCount() {
  ui.memberCount.textContent = String(client.member_count(shown) || "");
}

// ---- moderation: the member menu and the room settings panel ----

// Sends an operator's action; what cannot be sent as asked the model says in the open
// conversation, and what the server refuses comes back as an error line.
// With the settings panel open, a change to the bans or mutes fetches the list again.
// Returns why not, when it could not be sent.
function moderate(room, action, target = "", arg = "") {
  const err = client.moderate(room, action, target, arg, now());
  if (!err && BAN_ACTIONS.has(action) && !ui.settingsPanel.hidden) {
    client.moderate(room, "bans", "", "", now());
  }
  pump();
  return err;
}

const BAN_ACTIONS = new Set(["ban", "unban", "mute", "unmute"]);
// How a member's menu names what the Client offers (`member_actions`: which, and in what order,
// is core's to say); ban and mute take the menu's duration.
const MENU_LABELS = {
  kick: "Kick",
  ban: "Ban",
  mute: "Mute",
  unmute: "Unmute",
  voice: "Voice",
  devoice: "Devoice",
  op: "Make operator",
  deop: "Deop",
};
const TIMED_ACTIONS = new Set(["ban", "mute"]);

function openMemberMenu(room, nick, anchor) {
  const role = client.role(room, nick);
  ui.memberMenuNick.textContent = `${MARKS[role] ?? ""}${nick}`;
  ui.memberMenuDuration.value = "";
  const item = (label, action, run) => {
    const b = el("button", "", label);
    b.type = "button";
    b.dataset.action = action;
    b.setAttribute("role", "menuitem");
    b.addEventListener("click", () => {
      closeMemberMenu();
      run();
    });
    return b;
  };
  const items = [item("Message", "message", () => messageMember(nick))];
  for (const action of client.member_actions(room, nick)) {
    const arg = () => (TIMED_ACTIONS.has(action) ? ui.memberMenuDuration.value : "");
    items.push(item(MENU_LABELS[action] ?? action, action, () => moderate(room, action, nick, arg())));
  }
  ui.memberMenuItems.replaceChildren(...items);
  const r = anchor.getBoundingClientRect();
  ui.memberMenu.style.top = `${Math.round(r.bottom)}px`;
  const left = Math.min(r.left - 40, window.innerWidth - 200);
  ui.memberMenu.style.left = `${Math.round(Math.max(8, left))}px`;
  ui.memberMenu.hidden = false;
  items[0].focus();
}

function closeMemberMenu() {
  ui.memberMenu.hidden = true;
}

document.addEventListener("click", (e) => {
  if (!ui.memberMenu.hidden && !ui.memberMenu.contains(e.target) && !ui.memberList.contains(e.target)) {
    closeMemberMenu();
  }
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !ui.memberMenu.hidden) closeMemberMenu();
});

// The settings panel shows the open room's founder and modes; its operators also change modes
// and lift bans there. Drawn from the model whenever the room's settings change.
function renderSettings() {
  const room = shown?.startsWith("#") ? shown : null;
  ui.settingsToggle.hidden = room === null;
  if (room === null) {
    ui.settingsPanel.hidden = true;
    ui.settingsToggle.setAttribute("aria-expanded", "false");
    return;
  }
  if (ui.settingsPanel.hidden) return;
  const p = client.policy(room);
  if (!p) return;
  const bits = [p.founder ? `registered to ${p.founder}` : "not registered (/register to take charge)"];
  bits.push(`modes ${p.letters}`);
  if (p.limit) bits.push(`at most ${p.limit} members`);
  if (p.ops.length) bits.push(`operators: ${p.ops.join(" ")}`);
  ui.settingsSummary.textContent = bits.join(" · ");
  ui.settingsOps.hidden = !p.am_op;
  if (!p.am_op) return;
  $("mode-i").checked = p.invite_only;
  $("mode-m").checked = p.moderated;
  $("mode-t").checked = p.topic_ops;
  if (document.activeElement !== ui.keyInput) ui.keyInput.value = p.key ?? "";
  if (document.activeElement !== ui.limitInput) ui.limitInput.value = p.limit ? String(p.limit) : "";
  // Bans and mutes, each with its button to lift it (a mute of someone who left the room
  // could be lifted only by typing /unmute).
  const entries = (list, items, action, label, none) => {
    list.replaceChildren(...(items ?? []).map((b) => {
      const li = el("li", "", b.words);
      const un = el("button", action, label);
      un.type = "button";
      un.dataset.mask = b.mask;
      un.addEventListener("click", () => moderate(room, action, b.mask));
      li.append(" ", un);
      return li;
    }));
    if (!items?.length) list.replaceChildren(el("li", "none", items ? none : "…"));
  };
  entries(ui.banList, p.bans, "unban", "Unban", "nobody is banned");
  entries(ui.muteList, p.mutes, "unmute", "Unmute", "nobody is muted");
}

ui.settingsToggle.addEventListener("click", () => {
  const open = ui.settingsPanel.hidden;
  ui.settingsPanel.hidden = !open;
  ui.settingsToggle.setAttribute("aria-expanded", String(open));
  // The model has the settings (they come on joining and with every change); the ban list
  // is asked for.
  if (open && shown?.startsWith("#") && client.policy(shown)?.am_op) moderate(shown, "bans");
  renderSettings();
});
for (const box of document.querySelectorAll("#settings-ops input[data-mode]")) {
  box.addEventListener("change", () => {
    if (shown?.startsWith("#")) moderate(shown, "mode", `${box.checked ? "+" : "-"}${box.dataset.mode}`);
  });
}
ui.keyForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (shown?.startsWith("#")) moderate(shown, "mode", "+k", ui.keyInput.value);
});
$("key-clear").addEventListener("click", () => {
  if (shown?.startsWith("#")) moderate(shown, "mode", "-k");
});
ui.limitForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (shown?.startsWith("#")) moderate(shown, "mode", "+l", ui.limitInput.value);
});
$("limit-clear").addEventListener("click", () => {
  if (shown?.startsWith("#")) moderate(shown, "mode", "-l");
});
ui.inviteForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const nick = ui.inviteInput.value.trim();
  if (!nick || !shown?.startsWith("#")) return;
  moderate(shown, "invite", nick);
  ui.inviteInput.value = "";
});
// A ban by mask: an account, a nick, or an address or network (IPv4 or IPv6 CIDR).
ui.banForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const mask = ui.banMask.value.trim();
  if (!mask || !shown?.startsWith("#")) return;
  if (!moderate(shown, "ban", mask, ui.banFor.value)) {
    ui.banMask.value = "";
    ui.banFor.value = "";
  }
});

// The open conversation changed (or is drawn for the first time). The log left keeps where its
// reader was (placeOf), and the one shown goes back there: at its newest lines if it was left at
// them (or is new), else at the same line at the same height as before, whatever came meanwhile
// (until the forty-first session every room shown went to its bottom, and a reader who had
// scrolled up lost their place at each switch).
function showCurrent() {
  const key = client.current();
  const left = shown === null || shown === key ? undefined : logs.get(shown);
  if (left && !left.log.hidden) {
    left.place = placeOf(left);
    left.log.hidden = true;
  }
  shown = key;
  const d = logFor(key);
  if (d && d.log.hidden) {
    d.log.hidden = false;
    restorePlace(d, d.place);
    d.reading = d.place;
    d.size = sizeOf(d.log);
    if (d.place === null) d.unseen = 0;
  }
  renderCue();
  for (const b of document.querySelectorAll(".conv-list button")) {
    if (b.dataset.conv === key) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
  renderHeader();
  renderMembers(client.members(key), client.member_count(key));
  closeMemberMenu();
  renderSettings();
  ui.app.classList.remove("show-rooms", "show-members");
  ui.scrim.hidden = true;
}

function renderConn() {
  const conn = client.conn();
  ui.app.dataset.state = conn.state;
  clearInterval(bannerTimer);
  bannerTimer = null;
  switch (conn.state) {
    case "connected":
      ui.status.textContent = "connected";
      ui.banner.hidden = true;
      break;
    case "connecting":
      ui.status.textContent = conn.everConnected ? "reconnecting…" : "connecting…";
      if (conn.everConnected) showBanner("reconnecting…", false);
      break;
    case "reconnecting":
      // Counted quietly here: the conversation says once why the attempts fail.
      ui.status.textContent =
        conn.attempt > 1 ? `reconnecting… (attempt ${conn.attempt})` : "reconnecting…";
      renderReconnectBanner();
      bannerTimer = setInterval(renderReconnectBanner, 500);
      break;
    case "closed":
      ui.status.textContent = "disconnected";
      showBanner(
        conn.fatal?.startsWith("could not ")
          ? `You ${conn.fatal}.` // a refused sign-in or registration
          : conn.fatal ? `The server ended this session: ${conn.fatal}` : "You have left the chat.",
        true,
      );
      break;
  }
}

// The attempt the banner speaks of (its time), and whether it was set for at once.
let reconnectAt = null;
let reconnectAtOnce = false;

function renderReconnectBanner() {
  const conn = client?.conn();
  if (conn?.state !== "reconnecting") return;
  // Trying again at once (after a sign-out, whose close is asked for, or on the next address
  // of a cluster): nothing to wait for, and nothing to call lost. Decided when the attempt is
  // set, not from the time left: an attempt after a loss whose time has come (its timer late
  // on a busy machine) is still one after a loss (until the thirty-seventh session the banner
  // said a bare "reconnecting…" then).
  if (conn.at !== reconnectAt) {
    reconnectAt = conn.at;
    reconnectAtOnce = conn.at <= now();
  }
  if (reconnectAtOnce) {
    showBanner("reconnecting…", false);
    return;
  }
  const secs = Math.max(0, Math.ceil((conn.at - now()) / 1000));
  const what = conn.everConnected ? "Connection lost" : "Can't reach the chat server";
  const when = secs > 0 ? `trying again in ${secs}s` : "trying again now";
  showBanner(`${what}; reconnecting… — ${when}`, false);
}

function showBanner(text, closed) {
  ui.banner.hidden = false;
  ui.banner.classList.toggle("closed", closed);
  ui.banner.replaceChildren(el("span", "", text));
  if (closed) {
    const b = el("button", "", "Join again");
    b.type = "button";
    b.addEventListener("click", () => location.reload());
    ui.banner.append(b);
  }
}

// Everything from the model as it is now (at the start, and when the change log overflowed).
function renderAll() {
  for (const d of logs.values()) d.log.remove();
  logs.clear();
  shown = null;
  ui.meNick.textContent = client.me();
  renderAccount();
  renderList();
  syncLogs();
  showCurrent();
  renderConn();
  renderSearch();
}

// Applies the model's changes in order; each touches only what it changed. Logs of new
// conversations are drawn once the queue is applied: drawn from the model now, they would get
// the queued changes twice.
function applyChanges() {
  let current = false;
  let listed = false;
  for (let ch = client.poll_change(); ch !== undefined; ch = client.poll_change()) {
    switch (ch.type) {
      case "all":
        // What is still queued is in the model already.
        while (client.poll_change() !== undefined);
        renderAll();
        current = false;
        listed = false;
        break;
      case "conn":
        renderConn();
        break;
      case "me":
        ui.meNick.textContent = client.me();
        renderAccount();
        renderSettings();
        break;
      case "policy":
        // Rare (an operator acted): redraw the marks and the panel; with the panel open, a
        // ban list older than the settings (another operator's ban) is fetched again.
        if (ch.key === shown) {
          renderMembers(client.members(shown), client.member_count(shown));
          renderSettings();
          const p = client.policy(shown);
          if (!ui.settingsPanel.hidden && p?.am_op && p.bans_stale) {
            client.moderate(shown, "bans", "", "", now());
          }
        }
        break;
      case "list":
        renderList();
        listed = true;
        break;
      case "current":
        current = true;
        break;
      case "counts":
        renderCounts(ch);
        break;
      case "topic":
        if (ch.key === shown) renderHeader();
        break;
      case "memberAdded":
        if (ch.key === shown) {
          ui.memberList.insertBefore(memberEl(ch.nick), ui.memberList.children[ch.index] ?? null);
          renderMemberCount();
        }
        break;
      case "memberRemoved":
        if (ch.key === shown) {
          ui.memberList.children[ch.index]?.remove();
          renderMemberCount();
        }
        break;
      case "memberAway":
        if (ch.key === shown) ui.memberList.children[ch.index]?.replaceWith(memberEl(ch.nick));
        break;
      case "members":
        if (ch.key === shown) renderMembers(ch.members, ch.count);
        break;
      case "line": {
        const d = logs.get(ch.key);
        if (d) appendLine(d, ch.line);
        break;
      }
      case "trimmed": {
        const d = logs.get(ch.key);
        if (d) trimLines(d, ch.n);
        break;
      }
      case "outgoing": {
        const d = logs.get(ch.key);
        if (d) renderOutbox(d, ch.lines);
        break;
      }
      case "prepended": {
        const d = logs.get(ch.key);
        if (d) prependLines(d, ch.before, ch.lines);
        break;
      }
      case "inserted": {
        const d = logs.get(ch.key);
        if (d) prependLines(d, ch.before, [ch.line], true);
        break;
      }
      case "scrollback": {
        const d = logs.get(ch.key);
        if (d) renderTop(d, ch.scrollback);
        break;
      }
      case "search":
        renderSearch();
        break;
      case "devices":
        renderDevices();
        break;
      default:
        if (typeof ch === "string") console.error(ch);
    }
  }
  if (listed) syncLogs();
  if (current || shown === null) showCurrent();
  seekHit();
  document.title = client.title();
}

// --- notifications --------------------------------------------------------------------------------

const notes = []; // what was notified, for the tests: {title, body, shown, error}

function notificationsAllowed() {
  return "Notification" in window && Notification.permission === "granted";
}

function renderNotifyButton() {
  ui.notify.hidden = !("Notification" in window) || Notification.permission !== "default";
}

ui.notify.addEventListener("click", async () => {
  try {
    await Notification.requestPermission();
  } catch (e) {
    console.warn("natter: notifications", e);
  }
  renderNotifyButton();
});

// A mention or a direct message while the page is hidden: a desktop notification, if allowed.
function notifyAlerts() {
  for (let a = client.poll_alert(); a !== undefined; a = client.poll_alert()) {
    if (!document.hidden || !notificationsAllowed()) continue;
    const note = { title: a.title, body: a.body, shown: false, error: false };
    try {
      const n = new Notification(a.title, { body: a.body, tag: a.key });
      n.onshow = () => { note.shown = true; };
      n.onerror = () => { note.error = true; };
      n.onclick = () => {
        window.focus();
        if (client?.open(a.key)) pump();
        n.close();
      };
    } catch (e) {
      // Some browsers (Chrome on Android) only notify through a service worker.
      note.error = true;
      console.warn("natter: notification", e);
    }
    if (notes.length < MAX_NOTES) notes.push(note);
  }
}

// --- the account ---------------------------------------------------------------------------------

// Who we are signed in as, and the Sign out control.
function renderAccount() {
  const account = client.account();
  ui.meAccount.hidden = ui.signOut.hidden = ui.devicesOpen.hidden = account === undefined;
  ui.signInOpen.hidden = account !== undefined;
  if (account === undefined) ui.devicesPanel.hidden = true;
  const same = account?.toLowerCase() === client.me().toLowerCase();
  ui.meAccount.textContent =
    account === undefined ? "" : same ? " · signed in" : ` · signed in as ${account}`;
}

function keptSignIn() {
  try {
    const kept = JSON.parse(localStorage.getItem(KEPT_SIGN_IN) ?? "null");
    if (typeof kept?.account === "string" && typeof kept?.key === "string") return kept;
  } catch {
    // storage disabled, or not ours: nothing kept
  }
  return null;
}

// localStorage holds the device key while the session does (remembered, not refused, not
// signed out), and nothing otherwise. `keptFor`: the account it is for.
let keptKey = keptSignIn()?.key;
let keptFor = keptSignIn()?.account;
function keepKey() {
  const key = client.device_key();
  const account = client.account();
  if (key === keptKey || (key !== undefined && account === undefined)) return;
  // Still signed in to the kept key's account, with no key for now: a `/password` waiting for
  // its answer holds it (given back if the change is refused, a new one kept in its place if
  // taken), or a typed `/login` is under way. Nothing is let go yet: forgotten here, the
  // browser's other tabs signed in with it signed out and revoked it, and a refused change
  // left this one keeping a key that opened nothing (until the fortieth session's review).
  if (key === undefined && account !== undefined && keptKey !== undefined &&
      account.toLowerCase() === keptFor?.toLowerCase()) return;
  // Let go here (Sign out, /logout, /login, /password), the conversation says so; refused by
  // the server (signed out elsewhere, or the password changed), only this can.
  if (key === undefined && keptKey !== undefined && client.key_refused()) {
    showBanner("Your remembered sign-in no longer works, so you are a guest now. Sign in " +
      "again with \u201cSign in or register\u201d in the sidebar, or /login nick password.", false);
    const ok = el("button", "", "OK");
    ok.type = "button";
    ok.addEventListener("click", () => { ui.banner.hidden = true; });
    ui.banner.append(ok);
  }
  try {
    // Let go, it is forgotten only if it is still this tab's: another tab may have kept its
    // own since (a remembered sign-in there), which is the browser's now.
    if (key === undefined) {
      if (keptSignIn()?.key === keptKey) localStorage.removeItem(KEPT_SIGN_IN);
    } else {
      localStorage.setItem(KEPT_SIGN_IN, JSON.stringify({ account, key }));
    }
  } catch {
    // storage disabled: this browser just cannot remember
  }
  keptKey = key;
  keptFor = key === undefined ? undefined : account;
}

// Tabs of one browser share its remembered sign-in (localStorage): each tab opened signs in
// with it, side by side with the others (each its own connection, one device of the account
// to the server). Another tab let it go (Sign out, /logout; or the server refused it): the
// server has forgotten the key, so this tab, signed in with the same one, signs out too, as a
// browser's tabs do, instead of going on until its next reconnect is refused. Another tab
// keeping a sign-in of its own in its place changes nothing here.
window.addEventListener("storage", (e) => {
  if (e.key !== KEPT_SIGN_IN || e.newValue !== null || !client) return;
  let gone = null;
  try {
    gone = JSON.parse(e.oldValue ?? "null");
  } catch {
    return; // not ours
  }
  const mine = client.device_key();
  if (mine === undefined || gone?.key !== mine || client.account() === undefined) return;
  keptKey = undefined; // forgotten already
  client.sign_out(now());
  pump();
});

// --- the devices panel ----------------------------------------------------------------------------

// What this browser calls itself when the server remembers it ("Chromium on Linux"): from
// User-Agent Client Hints where there are some, else the user agent string.
function deviceLabel() {
  const data = navigator.userAgentData;
  const brands = Array.isArray(data?.brands) ? data.brands.map((b) => String(b.brand)) : [];
  return browser_device_label(brands, String(data?.platform ?? ""), navigator.userAgent);
}

function openDevices() {
  if (!client) return;
  ui.devicesPanel.hidden = false;
  ui.devicesTitle.textContent = "Remembered devices…";
  client.list_devices(now());
  pump();
}

// One device: its name, its last use, "this device" or a Forget button that asks first.
function deviceEl(d) {
  const li = el("li", "device");
  li.dataset.id = d.id;
  li.classList.toggle("this", d.this);
  const name = el("span", "device-label", d.label ?? "unnamed device");
  const id = el("span", "device-id", d.id);
  const head = el("div", "device-head");
  head.append(name, id);
  if (d.this) head.append(el("span", "device-this", "this device"));
  const when = new Date(d.remembered).toISOString().slice(0, 16).replace("T", " ");
  const last = el("div", "device-last", `${d.last}; remembered ${when} UTC`);
  li.append(head, last);
  if (!d.this) {
    const forget = el("button", "device-forget", "Forget");
    forget.type = "button";
    forget.addEventListener("click", () => {
      // Asked first: forgetting signs that device out for good.
      const ask = el("span", "device-confirm", `Forget ${d.label ?? d.id}? It is signed out for good. `);
      const yes = el("button", "device-yes", "Forget it");
      const no = el("button", "device-no", "Keep it");
      yes.type = no.type = "button";
      yes.addEventListener("click", () => {
        if (!client) return;
        client.forget_device(d.id, now());
        // Answered in order: the list asked after the forget no longer holds it.
        client.list_devices(now());
        pump();
      });
      no.addEventListener("click", () => ask.replaceWith(forget));
      ask.append(yes, no);
      forget.replaceWith(ask);
    });
    li.append(forget);
  }
  return li;
}

function renderDevices() {
  const list = client.devices_view();
  if (!list) return;
  ui.devicesTitle.textContent =
    list.length === 1 ? "1 remembered device" : `${list.length} remembered devices`;
  ui.devicesList.replaceChildren(...list.map(deviceEl));
}

ui.devicesOpen.addEventListener("click", openDevices);
ui.devicesClose.addEventListener("click", () => { ui.devicesPanel.hidden = true; });

ui.signOut.addEventListener("click", () => {
  if (!client) return;
  client.sign_out(now());
  pump();
  // The button is gone (a guest has none): the focus goes where one types, not to the page.
  ui.input.focus();
});
ui.signInOpen.addEventListener("click", openSignIn);

// --- the driver loop ----------------------------------------------------------------------------

function pump() {
  if (!client) return;
  for (let a = client.poll_action(); a !== undefined; a = client.poll_action()) {
    if (a === "connect") openSocket();
    else if (a === "close") closeAfterFlush = true;
  }
  for (let tx = client.poll_transmit(); tx !== undefined; tx = client.poll_transmit()) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(tx);
    } else {
      // Bytes polled with no open socket belong to a connection that is gone; the Session
      // resends what matters after it reconnects.
      console.debug("natter: dropped a message polled while offline");
    }
  }
  if (closeAfterFlush) {
    closeAfterFlush = false;
    closeSocket("closing");
  }
  try {
    applyChanges();
    notifyAlerts();
    keepKey();
  } catch (e) {
    console.error("natter: rendering failed", e);
    noteError(e);
  }
  arm();
  settleDialog();
}

function arm() {
  clearTimeout(timer);
  timer = null;
  const at = client.poll_timeout();
  if (at === undefined) return;
  // setTimeout's limit is ~24.8 days; a later deadline just wakes us early, which is harmless.
  const delay = Math.min(Math.max(0, at - now()), 2 ** 31 - 1);
  timer = setTimeout(() => {
    timer = null;
    if (!client) return;
    client.handle_timeout(now());
    pump();
  }, delay);
}

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

function openSocket() {
  closeSocket("replaced");
  let sock;
  try {
    sock = new WebSocket(socketUrl());
  } catch (e) {
    // Not reentrant-safe to call the Client from inside its own event loop: defer.
    setTimeout(() => {
      if (!client) return;
      client.handle_disconnected(`cannot open WebSocket: ${e}`, now());
      pump();
    }, 0);
    return;
  }
  sock.binaryType = "arraybuffer";
  ws = sock;
  let opened = false;
  sock.onopen = () => {
    if (ws !== sock) return;
    opened = true;
    client.handle_connected(now());
    pump();
  };
  sock.onmessage = (m) => {
    if (ws !== sock || sock === deaf || !(m.data instanceof ArrayBuffer)) return;
    client.handle_message(new Uint8Array(m.data), now());
    pump();
  };
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    // 1013 is the bridge saying it cannot reach the chat server (web-bridge/src/lib.rs): said
    // in those words, with the reason only when it adds something (an untrusted certificate).
    let why = `connection closed (${e.reason ? `${e.code}: ${e.reason}` : `code ${e.code}`})`;
    if (e.code === 1013) {
      why = e.reason && e.reason !== "chat server unavailable"
        ? `cannot reach the chat server (${e.reason})`
        : "cannot reach the chat server";
    } else if (!opened) {
      // Never opened (the browser says only 1006): the page's own server, the bridge, did not
      // answer, and the chat is out of reach all the same.
      why = "cannot reach the chat server";
    }
    client.handle_disconnected(why, now());
    pump();
  };
  sock.onerror = () => {}; // a close event always follows, with more to say
}

function closeSocket(why, code = 1000) {
  const sock = ws;
  if (!sock) return;
  ws = null; // its close event is ours, not the Client's news
  sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
  try {
    sock.close(code, why);
  } catch {
    // already closing
  }
}

// --- typing -------------------------------------------------------------------------------------

// A typed line goes to the open conversation: the model knows which (a room, or a person).
function input(line) {
  if (!client) return;
  client.handle_input(line, now());
  pump();
}

ui.inputForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const line = ui.input.value;
  if (!line.trim()) return;
  // A line with a password is sent, never kept for Up/Down (as the terminal client does).
  if (!carries_password(line) && history[history.length - 1] !== line) history.push(line);
  if (history.length > MAX_HISTORY) history.shift();
  historyPos = history.length;
  draft = "";
  ui.input.value = "";
  // Something said here from a log scrolled up (typed plainly, `/me`, or a `/msg` naming this
  // conversation): down to the newest lines, where it goes.
  if (client?.says_here(line)) toBottom();
  input(line);
});

ui.input.addEventListener("keydown", (e) => {
  // Any other key ends a run of Tabs (the nick it put there stays).
  if (e.key !== "Tab") tabCycle = null;
  const d = shown === null ? undefined : logs.get(shown);
  if ((e.key === "PageUp" || e.key === "PageDown") && !e.altKey && !e.ctrlKey && !e.metaKey
    && !e.shiftKey && d) {
    // The log read while typing (as IRC clients do): a screen up or down, a line of it kept.
    // The focus is here, not on the log, so the browser would scroll nothing.
    e.preventDefault();
    const page = Math.max(40, d.log.clientHeight - 40);
    d.log.scrollBy({ top: e.key === "PageUp" ? -page : page });
    return;
  }
  if (e.key === "End" && e.ctrlKey && !e.altKey && !e.metaKey && !e.shiftKey) {
    // Down to the newest lines (the caret goes to the end of the line too, as it would).
    toBottom();
    return;
  }
  if (e.key === "ArrowUp" && historyPos > 0) {
    if (historyPos === history.length) draft = ui.input.value;
    historyPos -= 1;
    ui.input.value = history[historyPos];
  } else if (e.key === "ArrowDown" && historyPos < history.length) {
    historyPos += 1;
    ui.input.value = historyPos === history.length ? draft : history[historyPos];
  } else if (e.key === "Tab" && !e.shiftKey && (cycling() || wordBeforeCursor())) {
    // A word being typed: Tab completes it, and stays in the input when nothing fits (moving
    // on to Send, the next Enter would send the half-typed line). After a space, or in an
    // empty input, Tab moves on as everywhere else.
    e.preventDefault();
    complete();
    return;
  } else {
    return;
  }
  e.preventDefault();
  const end = ui.input.value.length;
  ui.input.setSelectionRange(end, end);
});

// The word typed right before the cursor ("" after a space or at the start).
function wordBeforeCursor() {
  const pos = ui.input.selectionStart ?? ui.input.value.length;
  return /(\S*)$/.exec(ui.input.value.slice(0, pos))[1];
}

// A run of Tabs: what matched the word typed, which one is in the input, where it starts and
// ends (with its suffix), and the input as that Tab left it. Any other key, or an input changed
// since, ends it.
let tabCycle = null;

// Whether the last key was a Tab that completed, and the input is as it left it.
function cycling() {
  const pos = ui.input.selectionStart ?? ui.input.value.length;
  return tabCycle !== null && tabCycle.value === ui.input.value && tabCycle.end === pos;
}

// Tab completes what is typed before the cursor as the terminal client does (the model's
// matches, with their suffix): at the start of the line a command (`/jo`: `/join `), a room we
// are in (`#ru`), or else a member's nick (`: ` after it at the start); Tab again puts the next
// match in its place, round and round (as irssi and WeeChat do). Until the fortieth session the
// page completed nicks only.
function complete() {
  if (!client) return false;
  const pos = ui.input.selectionStart ?? ui.input.value.length;
  let start;
  let matches;
  let i;
  if (cycling()) {
    ({ start, matches } = tabCycle);
    i = (tabCycle.i + 1) % matches.length;
  } else {
    const word = wordBeforeCursor();
    if (!word) return false;
    start = pos - word.length;
    matches = client.completions(word, start === 0);
    if (matches.length === 0) return false;
    i = 0;
  }
  const value = ui.input.value;
  ui.input.value = value.slice(0, start) + matches[i] + value.slice(pos);
  const end = start + matches[i].length;
  ui.input.setSelectionRange(end, end);
  tabCycle = { start, matches, i, end, value: ui.input.value };
  return true;
}

// The room box joins the room typed (its `#` may be left out); not a room name, the box keeps
// it to be mended, and the conversation says why.
ui.joinForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const room = ui.joinInput.value.trim();
  if (!room || !client) return;
  if (client.join(room, now()) === undefined) ui.joinInput.value = "";
  pump();
});

$("toggle-rooms").addEventListener("click", () => {
  ui.app.classList.toggle("show-rooms");
  ui.app.classList.remove("show-members");
  ui.scrim.hidden = !ui.app.classList.contains("show-rooms");
});
$("toggle-members").addEventListener("click", () => {
  ui.app.classList.toggle("show-members");
  ui.app.classList.remove("show-rooms");
  ui.scrim.hidden = !ui.app.classList.contains("show-members");
});
ui.scrim.addEventListener("click", () => {
  ui.app.classList.remove("show-rooms", "show-members");
  ui.scrim.hidden = true;
});
// Escape closes a drawer (the phone layout's rooms or members), as a click beside it does.
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || ui.scrim.hidden || ui.nickDialog.open) return;
  const which = ui.app.classList.contains("show-rooms") ? "toggle-rooms" : "toggle-members";
  ui.app.classList.remove("show-rooms", "show-members");
  ui.scrim.hidden = true;
  $(which).focus();
});

// The window (or the room for the logs) changed size: the log on screen stays at its bottom if
// it was, else its reader's line stays at the same height (the lines above it wrap anew, taller
// or shorter: until the forty-first session's review its pixels stayed, and the line moved).
new ResizeObserver(() => {
  const d = shown === null ? undefined : logs.get(shown);
  if (!d || d.log.hidden) return;
  restorePlace(d, d.reading);
  d.size = sizeOf(d.log);
}).observe(ui.logs);

// Back online (or back to the tab) while waiting to reconnect: try now, not at the end of the
// backoff (the Client ignores this unless it is waiting). Back online while connected: the
// link is checked at once (a ping with a few seconds to be answered), as after a sleep. While
// the tab is hidden, what arrives in the open conversation counts as unread.
window.addEventListener("online", () => {
  if (!client) return;
  client.reconnect_now(now());
  client.check_link(now());
  pump();
});
document.addEventListener("visibilitychange", () => {
  if (!client) return;
  client.set_attention(!document.hidden);
  // Shown again: checked as after a sleep, and, waiting to reconnect, tried now even right
  // after a wake did (a person is looking; wakes alone keep to the backoff).
  if (!document.hidden) {
    wokeUp();
    client.reconnect_now(now());
  }
  pump();
});

// A sleep. The monotonic clock (performance.now) stops while the computer sleeps, in Chromium on
// Linux and macOS, and so do the keepalive's deadlines on it: a link that died meanwhile was
// found only at the next keepalive, up to about 15 s later than on the wall clock. The wall
// clock goes on, so a wall clock that moved far more than the monotonic one since the last look
// (every WAKE_TICK, and when the tab is shown again or back from the browser's cache) says the
// computer slept: the link is checked at once, a ping with a few seconds to be answered.
// (A wall clock set forward looks the same, and costs one ping; one that jumps again and again
// gets no more reconnect attempts than the backoff allows.) Every timer stays on the monotonic
// clock.
const WAKE_TICK = 2_000;
const WAKE_GAP = 5_000;
let wakeWall = Date.now();
let wakeMono = performance.now();
function wokeUp() {
  const wall = Date.now();
  const mono = performance.now();
  const slept = wall - wakeWall - (mono - wakeMono);
  wakeWall = wall;
  wakeMono = mono;
  if (slept < WAKE_GAP || !client) return false;
  client.check_link(now());
  pump();
  return true;
}
setInterval(wokeUp, WAKE_TICK);
window.addEventListener("pageshow", () => wokeUp());

// Leaving the page (reloaded, closed, navigated away), which the page cannot tell apart: a
// guest's session is kept for this tab (sessionStorage) and the connection closed with
// LEFT_THE_PAGE, not a quit. The bridge holds the session's connection for a short grace
// (core/src/limits.rs, LEFT_PAGE_GRACE: 5 s): a reload resumes the session within it (the
// same nick, its rooms, and what was said meanwhile; nobody sees it go); a tab closed for good
// does not come back, and the bridge quits for it, so its nick is free and its rooms see it
// go at once rather than after the server's resume window (2 minutes). The browser's copy
// (KEPT_LAST) lets a tab opened again soon after come back as the same nick in the same rooms.
// A page kept in the back/forward cache closes without that code (the server holds its
// session for its window; shown again, it reloads and resumes). An account's page keeps
// nothing here and closes plainly: a remembered one signs in again with its kept key. A
// guest's session that is not kept (a guest only because its remembered sign-in was refused,
// whose reload offers the form instead; one still asking to sign in) quits as the page goes,
// into the back/forward cache too: nobody will resume it, and closed plainly the server would
// hold it for its resume window, its nick a ghost in other people's member lists for those 2
// minutes.
const LEFT_THE_PAGE = 4100; // core/src/bridge.rs
window.addEventListener("pagehide", (e) => {
  if (!client) return;
  const kept = client.resumable();
  try {
    if (kept === undefined) sessionStorage.removeItem(KEPT_SESSION);
    else sessionStorage.setItem(KEPT_SESSION, JSON.stringify(kept));
  } catch {
    // storage disabled: a reload starts a new session
  }
  try {
    // For a tab closed for good (the page cannot tell): the next page to open resumes it.
    // Not the rooms' keys: other people's secrets, kept for this tab only (sessionStorage).
    if (kept !== undefined) {
      const shared = { ...kept, keys: [] };
      localStorage.setItem(KEPT_LAST, JSON.stringify({ at: Date.now(), kept: shared }));
    }
  } catch {
    // storage disabled: a closed tab's session ends with its resume window
  }
  // Into the back/forward cache too: shown again, the page reloads (a new session), so
  // nobody resumes that one either.
  if (kept === undefined && client.account() === undefined) {
    client.handle_input("/quit left the page", now());
    pump(); // sends the quit, and closes the socket after it
    return;
  }
  closeSocket("left the page", kept !== undefined && !e.persisted ? LEFT_THE_PAGE : 1000);
});
// Back from the browser's back/forward cache after that: a new session.
window.addEventListener("pageshow", (e) => {
  if (e.persisted) location.reload();
});

// --- start --------------------------------------------------------------------------------------

function randomSeed() {
  const a = new Uint32Array(2);
  crypto.getRandomValues(a);
  return a[0] * 2 ** 21 + (a[1] >>> 11); // 53 random bits, exact in a double
}

// The guest's session this tab kept when it was last left (a reload), taken once: a page
// resumes it at most once, and keeps it again when it goes. Without one (a new tab), the
// session a guest's tab left last in this browser, if it went less than the server's resume
// window ago: the tab was closed and opened again. Either way the browser's copy is taken too,
// so that no other page resumes the same session (it would take it over from this one).
// `orLast` false: this tab's own alone (and its copy), when it gives way to a sign-in.
function keptSession(orLast = true) {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(KEPT_SESSION) ?? "null");
    sessionStorage.removeItem(KEPT_SESSION);
  } catch {
    kept = null; // storage disabled, or not ours
  }
  try {
    const last = JSON.parse(localStorage.getItem(KEPT_LAST) ?? "null");
    const mine = kept !== null && last?.kept?.token === kept.token;
    const fresh = typeof last?.at === "number" && kept_session_fresh(last.at, Date.now());
    const taken = orLast && kept === null && fresh && last?.kept;
    if (last !== null && (mine || taken || !fresh)) localStorage.removeItem(KEPT_LAST);
    if (taken) kept = last.kept;
  } catch {
    // storage disabled, or not ours: nothing more to resume
  }
  return kept;
}

// Starts the client that resumes `kept`; false if it cannot (damaged, or not ours).
function resume(kept) {
  try {
    client = Client.resumed(
      kept.nick, kept.token, kept.rooms, kept.seqs, kept.keys ?? [], kept.lastId ?? 0, randomSeed(),
      now());
  } catch (e) {
    console.warn("natter: the kept session cannot be resumed", e);
    client = null;
    return false;
  }
  return started();
}

// Starts the client as `nick`: a guest, or signing in or registering (`how`) with `password`,
// or signing in with a kept device key. False (and why shown) if it cannot.
function start(nick, how = "guest", secret = "", remember = false) {
  if (how === "sign-in" && !secret) {
    ui.nickError.textContent = "type your password to sign in";
    return false;
  }
  if (how === "register") {
    const err = password_error(secret);
    if (err) {
      ui.nickError.textContent = err;
      return false;
    }
  }
  try {
    client = new Client(nick, randomSeed(), now());
  } catch (e) {
    ui.nickError.textContent = String(e.message ?? e);
    return false;
  }
  let err;
  if (how === "sign-in") err = client.sign_in(nick, secret, remember, now());
  else if (how === "register") err = client.register(secret, remember, now());
  else if (how === "key") err = client.sign_in_with_key(nick, secret, now());
  if (err) {
    client = null;
    ui.nickError.textContent = err;
    return false;
  }
  return started();
}

// The client is made: the page follows it.
function started() {
  now(); // the wall clock, for the lines it makes
  client.set_device_label(deviceLabel());
  try {
    localStorage.setItem("natter.nick", client.me());
  } catch {
    // storage may be disabled; the nick is only a convenience
  }
  client.set_attention(!document.hidden);
  renderNotifyButton();
  renderAll();
  pump();
  ui.input.focus();
  return true;
}

// The dialog's sign-in or registration, once the server has answered it: taken, the dialog
// closes and the input line has the focus; refused (or the session ended otherwise), the dialog
// says why, keeps the account name, and clears and focuses the password field for another try.
// Meanwhile it says what it is waiting for, and that the server cannot be reached if so.
function settleDialog() {
  if (dialogAsk === null || !client) return;
  if (client.account() !== undefined) {
    endDialogAsk();
    closeDialog();
    return;
  }
  const conn = client.conn();
  if (conn.state === "closed") {
    // In the dialog's words (core's name commands typed at the bottom).
    const why = client.fatal_in_dialog() ?? "the server closed the connection";
    dropClient();
    refusedInDialog(why);
    return;
  }
  if (dialogHere) {
    // On the guest's own session: refused, it goes on as the guest it was.
    const refused = client.take_refusal();
    if (refused !== undefined && !client.account_pending()) {
      const back = renamedFrom;
      refusedInDialog(refused);
      if (back !== null) {
        client.rename_here(back, now());
        pump();
      }
      return;
    }
    if (dialogRegister !== null && client.me().toLowerCase() === dialogRegister.nick.toLowerCase()) {
      // Renamed for the registration: now the registration itself.
      const { password, remember, from } = dialogRegister;
      dialogRegister = null;
      renamedFrom = from;
      const err = client.register_here(password, remember, now());
      if (err) {
        refusedInDialog(err);
        client.rename_here(from, now());
        pump();
        return;
      }
      pump(); // sends it, and settles again
      return;
    }
  }
  const waiting = dialogAsk === "register" ? "Registering…" : "Signing in…";
  ui.nickStatus.textContent = conn.state === "reconnecting" && conn.attempt > 0
    ? `${waiting} (cannot reach the chat server yet; still trying)`
    : waiting;
  // A client of the dialog's own that has never reached the server asked it nothing yet (the
  // request waits for the welcome): another request may take its place.
  setDialogBusy(dialogHere || conn.everConnected || conn.state !== "reconnecting");
}

// The dialog's request is answered (or given up): the dialog takes input again.
function endDialogAsk() {
  dialogAsk = null;
  dialogHere = false;
  dialogRegister = null;
  renamedFrom = null;
  ui.nickStatus.textContent = "";
  setDialogBusy(false);
}

// The dialog's request was refused (`why`, in the dialog's words, Client::take_refusal: what a
// refusal says to type, the dialog's buttons do): said in the dialog, which keeps the account
// name and clears and focuses the password field for another try.
function refusedInDialog(why) {
  endDialogAsk();
  ui.nickError.textContent = why;
  ui.passwordInput.value = "";
  ui.passwordInput.setAttribute("aria-invalid", "true");
  ui.passwordInput.focus();
}

// While the dialog's request waits for its answer, nothing in the dialog can ask another
// (a second click, Enter again): its buttons are disabled and its fields read-only.
function setDialogBusy(busy) {
  ui.nickForm.setAttribute("aria-busy", String(busy));
  for (const b of ui.nickForm.querySelectorAll("button")) b.disabled = busy;
  ui.nickInput.readOnly = busy;
  ui.passwordInput.readOnly = busy;
  ui.rememberInput.disabled = busy;
}

// Lets go of the client of a sign-in the dialog asked and that did not happen: its socket,
// its timers and what it drew behind the dialog go with it.
function dropClient() {
  clearTimeout(timer);
  timer = null;
  clearInterval(bannerTimer);
  bannerTimer = null;
  closeSocket("signing in again");
  client = null;
  for (const d of logs.values()) d.log.remove();
  logs.clear();
  shown = null;
  renderCue();
  ui.roomList.replaceChildren();
  ui.dmList.replaceChildren();
  ui.memberList.replaceChildren();
  ui.banner.hidden = true;
  ui.app.dataset.state = "connecting";
  ui.status.textContent = "";
  ui.meNick.textContent = "";
  ui.signInOpen.hidden = true;
}

function askNick() {
  // Remembered: signed in with the kept device key, no questions asked.
  const kept = keptSignIn();
  if (kept && start(kept.account, "key", kept.key)) {
    // The account's page: a guest session this tab kept (before a sign-out) is left behind.
    keptSession(false);
    return;
  }
  if (kept) {
    // Not usable (damaged): forget it, and ask.
    try {
      localStorage.removeItem(KEPT_SIGN_IN);
    } catch {
      // ignore
    }
    keptKey = undefined;
    ui.nickError.textContent = "";
  }
  // Reloaded: the guest's session this tab kept, resumed.
  const session = keptSession();
  if (session && resume(session)) return;
  const fromUrl = new URLSearchParams(location.search).get("nick");
  let remembered = "";
  try {
    remembered = localStorage.getItem("natter.nick") ?? "";
  } catch {
    // ignore
  }
  ui.nickInput.value = fromUrl ?? remembered;
  setUpDialog();
  ui.nickDialog.showModal();
  ui.nickInput.select();
}

// The dialog's handlers, set once: at the start, or when a guest's page first opens it.
let dialogSetUp = false;
function setUpDialog() {
  if (dialogSetUp) return;
  dialogSetUp = true;
  const check = () => {
    const err = ui.nickInput.value ? nick_error(ui.nickInput.value) : undefined;
    ui.nickError.textContent = err ?? "";
    ui.nickInput.setAttribute("aria-invalid", err ? "true" : "false");
    return err;
  };
  ui.nickInput.addEventListener("input", check);
  // A key held down asks once: its repeats are no requests of their own. Enter held past a
  // refusal (which empties the password field) would otherwise be the first button's, "Join",
  // and the dialog would be gone with the refusal it said; held on the sidebar's Sign in
  // button, it would close the dialog it had just opened.
  ui.nickForm.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.repeat) e.preventDefault();
  });
  ui.nickForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const nick = ui.nickInput.value.trim();
    const err = nick_error(nick);
    if (err) {
      ui.nickError.textContent = err;
      ui.nickInput.setAttribute("aria-invalid", "true");
      ui.nickInput.focus();
      return;
    }
    const password = ui.passwordInput.value;
    ui.passwordInput.setAttribute("aria-invalid", "false");
    // Enter in the form is the first button's ("Join"): with a password typed, it signs in.
    let how = e.submitter?.value ?? "guest";
    if (how === "guest" && password) how = "sign-in";
    // One request at a time: asked while the last one waits for its answer (a double click,
    // Enter then a click), nothing more is asked, and the answer shown is the first one's.
    if (dialogAsk !== null && ui.nickForm.getAttribute("aria-busy") === "true") return;
    // Asked again while the last sign-in still waits for a server never reached (it was asked
    // nothing yet): this one instead.
    if (client && dialogAsk !== null) {
      dropClient();
      endDialogAsk();
    }
    if (client && how === "guest") {
      // A guest's page that opened the dialog goes on as a guest (under the nick typed).
      if (nick.toLowerCase() !== client.me().toLowerCase()) input(`/nick ${nick}`);
      closeDialog();
      return;
    }
    ui.nickStatus.textContent = "";
    ui.nickError.textContent = "";
    const remember = ui.rememberInput.checked;
    const conn = client?.conn();
    if (conn?.state === "reconnecting" || conn?.state === "connecting") {
      // A guest's page whose server is away (or not reached yet): asked now, the request would
      // wait for it with the dialog busy and Escape refused, the page unusable until the server
      // came back. Said instead, and the dialog stays as it is (Escape goes back to the page).
      // An attempt under way after a loss is still the server away.
      ui.nickError.textContent = conn.state === "reconnecting" || conn.everConnected
        ? "cannot reach the chat server right now: sign in or register once it is back"
        : "still connecting to the chat server: try again in a moment";
      return;
    }
    if (client) {
      // A guest signing in or registering from its page does it where it stands: the same
      // session, its rooms and conversations kept (the server makes them the account's);
      // refused, it goes on as the guest it was. A registration under another nick renames
      // the guest first (settleDialog registers once that is through).
      let err;
      if (how === "sign-in") {
        err = password ? client.sign_in_here(nick, password, remember, now())
          : "type your password to sign in";
      } else if (nick.toLowerCase() === client.me().toLowerCase()) {
        err = client.register_here(password, remember, now());
      } else {
        err = password_error(password);
        if (!err) {
          dialogRegister = { nick, password, remember, from: client.me() };
          err = client.rename_here(nick, now());
        }
      }
      if (err) {
        dialogRegister = null;
        ui.nickError.textContent = err;
        return;
      }
      dialogAsk = how;
      dialogHere = true;
      setDialogBusy(true);
      pump(); // sends it, and settles the dialog
      return;
    }
    if (!start(nick, how, password, remember)) return;
    if (how !== "guest") {
      // The dialog stays until the server answers (settleDialog), busy meanwhile.
      dialogAsk = how;
      setDialogBusy(true);
      settleDialog();
      return;
    }
    closeDialog();
  });
  // Escape must not leave the page without a nick: it closes the dialog only for a guest's
  // page that opened it (and is not waiting for a sign-in).
  ui.nickDialog.addEventListener("cancel", (e) => {
    if (!client || dialogAsk !== null) e.preventDefault();
  });
  ui.nickDialog.addEventListener("close", () => {
    ui.passwordInput.value = "";
    if (client) ui.input.focus();
  });
}

function closeDialog() {
  ui.passwordInput.value = "";
  ui.nickDialog.close();
  // Closing gives the focus back to what had it before the dialog (nothing): the input
  // line takes it, so that one types at once (from the keyboard, Enter then talk).
  ui.input.focus();
}

// A guest's page asks to sign in or register: the dialog, its nick offered.
function openSignIn() {
  if (!client || ui.nickDialog.open) return;
  setUpDialog();
  ui.nickInput.value = client.me();
  ui.nickInput.setAttribute("aria-invalid", "false");
  ui.passwordInput.setAttribute("aria-invalid", "false");
  ui.nickError.textContent = "";
  ui.nickStatus.textContent = "";
  ui.nickDialog.showModal();
  ui.nickInput.select();
}

// Script errors (including a wasm panic, which surfaces as an uncaught RuntimeError), kept for
// the tests to check; the console has them too.
const errors = [];
function noteError(what) {
  if (errors.length < 100) errors.push(String(what));
}
window.addEventListener("error", (e) => {
  noteError(e.message);
  // A panic in the wasm leaves the Client unusable: say so rather than sit there silently.
  if (e.error instanceof WebAssembly.RuntimeError) {
    clearTimeout(timer);
    closeSocket("crashed");
    client = null;
    ui.app.dataset.state = "closed";
    ui.status.textContent = "stopped";
    showBanner("natter stopped working (a bug, sorry). Reload to rejoin.", true);
  }
});
window.addEventListener("unhandledrejection", (e) => noteError(e.reason));

// Test hooks (used by www/tests/browser.rs, harmless for people).
window.natterDebug = {
  errors,
  notifications: notes,
  dropSocket() {
    if (ws) ws.close(4000, "dropped for a test");
    return ws !== null;
  },
  // The open socket hears nothing more, as a link that died in a sleep and still looks open.
  deafen() {
    deaf = ws;
    return ws !== null;
  },
  state: () => (client ? client.conn().state : "connecting"),
  attempt: () => client?.conn().attempt ?? 0,
  retryIn: () => (client?.conn().at ?? 0) - now(),
  account: () => client?.account() ?? null,
  policy: (key) => client?.policy(key) ?? null,
  keptSignIn,
  lines: (key) =>
    [...(logs.get(key)?.log.querySelectorAll(".line") ?? [])].map((l) => l.textContent),
  tops,
};

try {
  await init();
  askNick();
} catch (e) {
  ui.banner.hidden = false;
  ui.banner.classList.add("closed");
  ui.banner.textContent = `natter could not start: ${e}`;
  console.error(e);
}
