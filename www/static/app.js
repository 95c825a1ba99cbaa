// natter's page: the shell around core's Session (compiled to wasm, see www/src/lib.rs).
//
// The page owns the WebSocket, one timer and the DOM; the wasm `Client` owns the protocol: it says
// when to connect ("connect" events), what to send, and when to wake up. This file only carries
// bytes and renders events. Every piece of text from the network is put in the DOM with
// `textContent`, never as HTML.

import init, { Client, nick_error } from "./natter_web.js";

const MAX_LINES = 1000; // lines kept per conversation; older ones are dropped from the DOM
const MAX_HISTORY = 100; // typed lines remembered for Up/Down
const MAX_DMS = 50; // direct conversations kept; the least recently used one goes first
const LOBBY = "#lobby";

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
  input: $("input"),
  inputForm: $("input-form"),
  joinForm: $("join-form"),
  joinInput: $("join-input"),
  nickDialog: $("nick-dialog"),
  nickForm: $("nick-form"),
  nickInput: $("nick-input"),
  nickError: $("nick-error"),
  scrim: $("scrim"),
};

let client = null; // the wasm Client, once a nick is chosen
let ws = null; // the current WebSocket; callbacks from older ones are ignored
let closeAfterFlush = false;
let timer = null;
let bannerTimer = null;
let connState = { state: "connecting" };
let everConnected = false;
let me = "";
let sessionRoom = null; // the Session's current room as last seen, to follow /join and /part
let quitTyped = false; // so the end of the session is explained right

// Conversations: rooms ("#x") and direct chats ("@nick", folded), each with its own log element.
const convs = new Map();
let view = null; // key of the conversation on screen

const history = [];
let historyPos = 0;
let draft = "";

// --- small helpers ------------------------------------------------------------------------------

const fold = (nick) => nick.toLowerCase();
const now = () => Date.now();

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A stable colour per nick: FNV-1a of the folded nick picks a hue.
function nickHue(nick) {
  let h = 0x811c9dc5;
  for (const c of fold(nick)) {
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

function mentions(text) {
  if (!me || !text) return false;
  const t = text.toLowerCase();
  const n = fold(me);
  let i = t.indexOf(n);
  while (i !== -1) {
    const before = i === 0 ? " " : t[i - 1];
    const after = t[i + n.length] ?? " ";
    if (!/[a-z0-9_\-\[\]{}^|]/.test(before) && !/[a-z0-9_\-\[\]{}^|]/.test(after)) return true;
    i = t.indexOf(n, i + 1);
  }
  return false;
}

// --- conversations ------------------------------------------------------------------------------

function conv(key, label) {
  let c = convs.get(key);
  if (c) return c;
  const log = el("div", "log");
  log.dataset.conv = key;
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.hidden = true;
  ui.logs.append(log);
  c = {
    key,
    label: label ?? key,
    isRoom: key.startsWith("#"),
    log,
    lines: 0,
    lastDay: "",
    unread: 0,
    mentioned: false,
    members: new Map(), // folded -> nick as typed
    topic: "",
    joined: false,
  };
  convs.set(key, c);
  if (!c.isRoom) {
    const dms = [...convs.values()].filter((x) => !x.isRoom && x.key !== view && x !== c);
    if (dms.length >= MAX_DMS) {
      // Map order is insertion order, and touch() re-inserts: the first one is the stalest.
      convs.delete(dms[0].key);
      dms[0].log.remove();
    }
  }
  return c;
}

// Marks a direct conversation as just used (for MAX_DMS).
function touch(c) {
  if (c.isRoom) return;
  convs.delete(c.key);
  convs.set(c.key, c);
}

function dmKey(nick) {
  return "@" + fold(nick);
}

function show(key) {
  const c = convs.get(key);
  if (!c) return;
  if (view && convs.has(view)) convs.get(view).log.hidden = true;
  view = key;
  c.log.hidden = false;
  c.unread = 0;
  c.mentioned = false;
  if (c.isRoom && client && client.current_room() !== key) {
    client.switch_room(key);
    sessionRoom = client.current_room() ?? null;
  }
  c.log.scrollTop = c.log.scrollHeight;
  ui.app.classList.remove("show-rooms", "show-members");
  ui.scrim.hidden = true;
  ui.input.placeholder = c.isRoom
    ? `Message ${c.label}… (/help for commands)`
    : `Message ${c.label} directly…`;
  renderHeader();
  renderLists();
  renderMembers();
}

function renderHeader() {
  const c = convs.get(view);
  ui.convName.textContent = c ? c.label : "natter";
  ui.topic.textContent = c ? (c.isRoom ? c.topic || "no topic — set one with /topic text" : "direct messages") : "";
  ui.topic.title = c && c.topic ? c.topic : "";
  let unread = 0;
  for (const x of convs.values()) unread += x.unread;
  document.title = (unread ? `(${unread}) ` : "") + (c ? `${c.label} · natter` : "natter");
  $("toggle-rooms").classList.toggle("has-unread", unread > 0);
}

function renderLists() {
  const rooms = [];
  const dms = [];
  for (const c of convs.values()) {
    if (c.isRoom && !c.joined) continue;
    (c.isRoom ? rooms : dms).push(c);
  }
  rooms.sort((a, b) => (a.key === LOBBY ? -1 : b.key === LOBBY ? 1 : a.key.localeCompare(b.key)));
  fillList(ui.roomList, rooms);
  fillList(ui.dmList, dms.reverse()); // most recent first (touch() moves a DM to the end)
}

function fillList(list, items) {
  list.replaceChildren(
    ...items.map((c) => {
      const li = el("li", c.unread ? "has-unread" : "");
      const b = el("button");
      b.type = "button";
      b.dataset.conv = c.key;
      if (c.key === view) b.setAttribute("aria-current", "true");
      b.append(el("span", "name", c.label));
      if (c.unread) b.append(el("span", "badge" + (c.mentioned ? " mention" : ""), String(c.unread)));
      b.addEventListener("click", () => {
        show(c.key);
        ui.input.focus();
      });
      li.append(b);
      return li;
    }),
  );
}

function renderMembers() {
  const c = convs.get(view);
  if (!c || !c.isRoom) {
    ui.memberList.replaceChildren();
    ui.memberCount.textContent = "";
    return;
  }
  const nicks = [...c.members.values()].sort((a, b) => fold(a).localeCompare(fold(b)));
  ui.memberCount.textContent = String(nicks.length);
  ui.memberList.replaceChildren(
    ...nicks.map((n) => {
      const li = el("li");
      const b = el("button");
      b.type = "button";
      b.title = fold(n) === fold(me) ? "you" : `message ${n}`;
      const name = el("span", "nick", n);
      name.style.setProperty("color", `hsl(${nickHue(n)} 60% var(--nick-l))`);
      b.append(name);
      if (fold(n) !== fold(me)) {
        b.addEventListener("click", () => {
          conv(dmKey(n), n);
          show(dmKey(n));
          ui.input.focus();
        });
      }
      li.append(b);
      return li;
    }),
  );
}

// --- lines --------------------------------------------------------------------------------------

function stickToBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 60;
}

function append(c, line, at) {
  const stick = stickToBottom(c.log) || c.log.hidden;
  if (at) {
    const day = new Date(at).toDateString();
    if (day !== c.lastDay) {
      c.lastDay = day;
      c.log.append(el("div", "day", dayLabel(at)));
    }
  }
  c.log.append(line);
  c.lines += 1;
  while (c.lines > MAX_LINES && c.log.firstChild) {
    if (c.log.firstChild.classList.contains("line")) c.lines -= 1;
    c.log.firstChild.remove();
  }
  if (stick) c.log.scrollTop = c.log.scrollHeight;
}

function chatLine(classes, at, nick, text) {
  const line = el("div", "line " + classes);
  const time = el("time", "time", at ? hhmm(at) : "");
  if (at) {
    time.dateTime = new Date(at).toISOString();
    time.title = new Date(at).toLocaleString();
  }
  const who = el("span", "nick", nick);
  who.style.setProperty("--h", String(nickHue(nick)));
  line.append(time, who, el("span", "text", text));
  return line;
}

// A line from the page or the Session itself (not a room event): local time, then the words.
function noteLine(c, classes, text) {
  const at = now();
  const line = el("div", "line note " + classes);
  const time = el("time", "time", hhmm(at));
  time.title = new Date(at).toLocaleString();
  line.append(time, el("span", "text", text));
  append(c, line, at);
  return line;
}

function currentConv() {
  return convs.get(view) ?? conv(sessionRoom ?? LOBBY);
}

function info(text) {
  const c = currentConv();
  // Each failed reconnect attempt says "disconnected: ..."; one such line at a time is enough.
  const last = c.log.lastElementChild;
  if (text.startsWith("disconnected:") && last?.dataset.kind === "disconnected") {
    last.querySelector(".text").textContent = text;
    return;
  }
  // `/help` lists commands as aligned columns: keep them aligned.
  const line = noteLine(c, text.startsWith("/") ? "info help" : "info", text);
  if (text.startsWith("disconnected:")) line.dataset.kind = "disconnected";
}

function bump(c, mention) {
  if (c.key === view && !document.hidden) return;
  c.unread += 1;
  c.mentioned ||= mention;
}

// --- events from the Session ----------------------------------------------------------------------

function onEvent(ev) {
  switch (ev.type) {
    case "connect":
      openSocket();
      break;
    case "close":
      closeAfterFlush = true;
      break;
    case "state":
      setState(ev);
      break;
    case "welcome":
      me = ev.nick;
      ui.meNick.textContent = me;
      if (everConnected && ev.resumed) info("reconnected — picked up where you left off");
      everConnected = true;
      break;
    case "joined": {
      const c = conv(ev.room);
      c.joined = true;
      c.topic = ev.topic ?? "";
      c.members = new Map(ev.members.map((n) => [fold(n), n]));
      if (!view) show(ev.room);
      break;
    }
    case "parted": {
      const c = convs.get(ev.room);
      if (c) {
        c.joined = false;
        c.members.clear();
        noteLine(c, "info", `you left ${ev.room}`);
      }
      break;
    }
    case "room":
      onRoomEvent(ev);
      break;
    case "direct": {
      const mine = fold(ev.from) === fold(me);
      const other = mine ? ev.to : ev.from;
      const c = conv(dmKey(other), other);
      touch(c);
      append(c, chatLine(mine ? "say mine" : "say", ev.at, ev.from, ev.text), ev.at);
      if (!mine) bump(c, true);
      break;
    }
    case "gap": {
      const c = conv(ev.room);
      const what = ev.count === 1 ? "message" : "messages";
      const line = noteLine(c, "gap", `${ev.count} ${what} missed here`);
      line.title = `${ev.room} #${ev.first}..#${ev.last}`;
      break;
    }
    case "members": {
      const c = conv(ev.room);
      c.members = new Map(ev.members.map((n) => [fold(n), n]));
      // The Session also refreshes member lists by itself (after a resume): print only answers.
      if (ev.asked) {
        noteLine(c, "info", `${ev.members.length} in ${ev.room}: ${ev.members.join(", ")}`);
      }
      break;
    }
    case "rooms": {
      const c = currentConv();
      const line = el("div", "line info");
      const text = el("span", "text", ev.rooms.length ? "rooms: " : "no rooms yet");
      for (const r of ev.rooms) {
        const b = el("button", "room-link", `${r.room} (${r.members})`);
        b.type = "button";
        b.addEventListener("click", () => input(`/join ${r.room}`));
        text.append(b);
      }
      line.append(text);
      append(c, line);
      break;
    }
    case "topic": {
      const c = conv(ev.room);
      c.topic = ev.topic ?? "";
      noteLine(c, "info", ev.topic ? `topic: ${ev.topic}` : `${ev.room} has no topic`);
      break;
    }
    case "nick":
      me = ev.nick;
      ui.meNick.textContent = me;
      info(`you are now ${me}`);
      break;
    case "error":
      noteLine(currentConv(), "error", ev.text);
      break;
    case "info":
      info(ev.text);
      break;
    case "queued": {
      // While offline the Session keeps what is typed and sends it after reconnecting; until
      // the server takes it, the page shows it greyed out.
      if (connState.state === "connected") break;
      const c = ev.room ? conv(ev.room) : conv(dmKey(ev.to), ev.to);
      const l = chatLine(`${ev.act ? "act" : "say"} mine pending`, 0, me, ev.text);
      l.dataset.pendingId = String(ev.id);
      l.title = "not sent yet: goes out when the connection is back";
      append(c, l);
      break;
    }
    case "settled":
      // The echo (if delivered) was appended just before this; the placeholder goes.
      for (const l of document.querySelectorAll(`.line.pending[data-pending-id="${ev.id}"]`)) {
        if (ev.delivered) {
          const c = [...convs.values()].find((x) => x.log.contains(l));
          l.remove();
          if (c) c.lines -= 1;
        } else {
          l.classList.replace("pending", "failed");
          l.title = "not sent";
        }
      }
      break;
    default:
      if (typeof ev === "string") console.error(ev);
  }
}

function onRoomEvent(ev) {
  const c = conv(ev.room);
  const mine = fold(ev.from) === fold(me);
  let line;
  switch (ev.kind) {
    case "say":
    case "act": {
      const mention = !mine && mentions(ev.text);
      line = chatLine(`${ev.kind}${mine ? " mine" : ""}${mention ? " mention" : ""}`, ev.at, ev.from, ev.text);
      if (!mine) bump(c, mention);
      break;
    }
    case "join":
      c.members.set(fold(ev.from), ev.from);
      line = chatLine("quiet join", ev.at, ev.from, "joined");
      break;
    case "part":
      c.members.delete(fold(ev.from));
      line = chatLine("quiet part", ev.at, ev.from, ev.text ? `left (${ev.text})` : "left");
      break;
    case "quit":
      c.members.delete(fold(ev.from));
      line = chatLine("quiet quit", ev.at, ev.from, ev.text ? `quit (${ev.text})` : "quit");
      break;
    case "nick":
      c.members.delete(fold(ev.from));
      c.members.set(fold(ev.newNick), ev.newNick);
      line = chatLine("quiet nick", ev.at, ev.from, `is now known as ${ev.newNick}`);
      break;
    case "topic":
      c.topic = ev.text ?? "";
      line = chatLine("quiet topic", ev.at, ev.from, ev.text ? `set the topic: ${ev.text}` : "cleared the topic");
      break;
    default:
      return;
  }
  line.dataset.seq = String(ev.seq);
  append(c, line, ev.at);
}

function setState(ev) {
  connState = ev;
  ui.app.dataset.state = ev.state;
  clearInterval(bannerTimer);
  bannerTimer = null;
  switch (ev.state) {
    case "connected":
      ui.status.textContent = "connected";
      ui.banner.hidden = true;
      break;
    case "connecting":
      ui.status.textContent = everConnected ? "reconnecting…" : "connecting…";
      if (everConnected) showBanner("reconnecting…", false);
      break;
    case "reconnecting":
      ui.status.textContent = "reconnecting…";
      renderReconnectBanner();
      bannerTimer = setInterval(renderReconnectBanner, 500);
      break;
    case "closed":
      for (const l of document.querySelectorAll(".line.pending")) {
        l.classList.replace("pending", "failed");
        l.title = "not sent";
      }
      ui.status.textContent = "disconnected";
      showBanner(quitTyped ? "You have left the chat." : "The server ended this session.", true);
      break;
  }
}

function renderReconnectBanner() {
  if (connState.state !== "reconnecting") return;
  const secs = Math.max(0, Math.ceil((connState.at - now()) / 1000));
  const when = secs > 0 ? ` — trying again in ${secs}s` : "";
  const what = everConnected ? "Connection lost" : "Can't reach the chat server";
  showBanner(`${what}. reconnecting…${when}`, false);
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

// --- the driver loop ----------------------------------------------------------------------------

function pump() {
  if (!client) return;
  for (let ev = client.poll_event(); ev !== undefined; ev = client.poll_event()) {
    try {
      onEvent(ev);
    } catch (e) {
      console.error("natter: rendering an event failed", ev, e);
      noteError(e);
    }
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
  // Follow the Session when /join or /part changed the room typed chat goes to.
  const cur = client.current_room() ?? null;
  if (cur !== sessionRoom) {
    sessionRoom = cur;
    if (cur) show(cur);
  }
  if (view && convs.get(view)?.isRoom && !convs.get(view).joined && sessionRoom) show(sessionRoom);
  renderHeader();
  renderLists();
  if (view && convs.get(view)?.isRoom) renderMembers();
  arm();
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
    // Not reentrant-safe to call the Session from inside its own event loop: defer.
    setTimeout(() => {
      if (!client) return;
      client.handle_disconnected(`cannot open WebSocket: ${e}`, now());
      pump();
    }, 0);
    return;
  }
  sock.binaryType = "arraybuffer";
  ws = sock;
  sock.onopen = () => {
    if (ws !== sock) return;
    client.handle_connected(now());
    pump();
  };
  sock.onmessage = (m) => {
    if (ws !== sock || !(m.data instanceof ArrayBuffer)) return;
    client.handle_message(new Uint8Array(m.data), now());
    pump();
  };
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    const why = e.reason ? `${e.code}: ${e.reason}` : `code ${e.code}`;
    client.handle_disconnected(`connection closed (${why})`, now());
    pump();
  };
  sock.onerror = () => {}; // a close event always follows, with more to say
}

function closeSocket(why) {
  const sock = ws;
  if (!sock) return;
  ws = null; // its close event is ours, not the Session's news
  sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
  try {
    sock.close(1000, why);
  } catch {
    // already closing
  }
}

// --- typing -------------------------------------------------------------------------------------

function input(line) {
  if (!client) return;
  const c = convs.get(view);
  if (c && !c.isRoom && !line.startsWith("/")) {
    line = `/msg ${c.label} ${line}`;
  }
  if (/^\/(quit|exit)\b/i.test(line)) quitTyped = true;
  client.handle_input(line, now());
  pump();
}

ui.inputForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const line = ui.input.value;
  if (!line.trim()) return;
  if (history[history.length - 1] !== line) history.push(line);
  if (history.length > MAX_HISTORY) history.shift();
  historyPos = history.length;
  draft = "";
  ui.input.value = "";
  input(line);
});

ui.input.addEventListener("keydown", (e) => {
  if (e.key === "ArrowUp" && historyPos > 0) {
    if (historyPos === history.length) draft = ui.input.value;
    historyPos -= 1;
    ui.input.value = history[historyPos];
  } else if (e.key === "ArrowDown" && historyPos < history.length) {
    historyPos += 1;
    ui.input.value = historyPos === history.length ? draft : history[historyPos];
  } else if (e.key === "Tab" && ui.input.value) {
    completeNick() && e.preventDefault();
    return;
  } else {
    return;
  }
  e.preventDefault();
  const end = ui.input.value.length;
  ui.input.setSelectionRange(end, end);
});

// Tab completes a member's nick from what is typed before the cursor.
function completeNick() {
  const c = convs.get(view);
  if (!c || !c.isRoom) return false;
  const pos = ui.input.selectionStart ?? ui.input.value.length;
  const before = ui.input.value.slice(0, pos);
  const m = /(\S+)$/.exec(before);
  if (!m) return false;
  const stem = fold(m[1]);
  const hit = [...c.members.values()].find((n) => fold(n).startsWith(stem) && fold(n) !== fold(me));
  if (!hit) return false;
  const start = pos - m[1].length;
  const suffix = start === 0 ? ": " : " ";
  ui.input.value = before.slice(0, start) + hit + suffix + ui.input.value.slice(pos);
  const end = start + hit.length + suffix.length;
  ui.input.setSelectionRange(end, end);
  return true;
}

ui.joinForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const room = ui.joinInput.value.trim();
  if (!room) return;
  ui.joinInput.value = "";
  input(`/join ${room.startsWith("#") ? room : "#" + room}`);
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

// A log that was at the bottom stays there when the window changes size.
let pinned = true;
ui.logs.addEventListener("scroll", (e) => { pinned = stickToBottom(e.target); }, true);
new ResizeObserver(() => {
  const c = convs.get(view);
  if (c && pinned) c.log.scrollTop = c.log.scrollHeight;
}).observe(ui.logs);

// Back online (or back to the tab) while waiting to reconnect: try now, not at the end of the
// backoff. The Session ignores this unless it is waiting.
for (const [target, event] of [[window, "online"], [document, "visibilitychange"]]) {
  target.addEventListener(event, () => {
    if (client && !document.hidden) {
      client.reconnect_now(now());
      pump();
    }
  });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && view && convs.has(view)) {
    convs.get(view).unread = 0;
    convs.get(view).mentioned = false;
    renderHeader();
    renderLists();
  }
});

// --- start --------------------------------------------------------------------------------------

function randomSeed() {
  const a = new Uint32Array(2);
  crypto.getRandomValues(a);
  return a[0] * 2 ** 21 + (a[1] >>> 11); // 53 random bits, exact in a double
}

function start(nick) {
  try {
    client = new Client(nick, randomSeed(), now());
  } catch (e) {
    ui.nickError.textContent = String(e.message ?? e);
    return false;
  }
  me = nick;
  ui.meNick.textContent = nick;
  try {
    localStorage.setItem("natter.nick", nick);
  } catch {
    // storage may be disabled; the nick is only a convenience
  }
  pump();
  ui.input.focus();
  return true;
}

function askNick() {
  const fromUrl = new URLSearchParams(location.search).get("nick");
  let remembered = "";
  try {
    remembered = localStorage.getItem("natter.nick") ?? "";
  } catch {
    // ignore
  }
  ui.nickInput.value = fromUrl ?? remembered;
  const check = () => {
    const err = ui.nickInput.value ? nick_error(ui.nickInput.value) : undefined;
    ui.nickError.textContent = err ?? "";
    ui.nickInput.setAttribute("aria-invalid", err ? "true" : "false");
    return err;
  };
  ui.nickInput.addEventListener("input", check);
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
    if (start(nick)) ui.nickDialog.close();
  });
  // Escape must not leave the page without a nick.
  ui.nickDialog.addEventListener("cancel", (e) => e.preventDefault());
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
  dropSocket() {
    if (ws) ws.close(4000, "dropped for a test");
    return ws !== null;
  },
  state: () => connState.state,
  lines: (key) =>
    [...(convs.get(key)?.log.querySelectorAll(".line") ?? [])].map((l) => l.textContent),
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
