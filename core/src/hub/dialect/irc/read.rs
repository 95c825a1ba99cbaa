//! Reading a line when it runs: registration (`CAP`, `PASS`, `NICK`, `USER`), then every command
//! as hub requests, queries, or answers of the dialect's own. Every refusal is a numeric.

use super::caps;
use super::message::{Message, Tags, body_len, cut, echoed, fit, write_line};
use super::names::{self, Said};
use super::numeric::*;
use super::{Irc, Label, Running, Whox};
use crate::hub::config::ServerName;
use crate::hub::dialect::{Hello, IfTaken, MonitorOp, Reply, Request, Step};
use crate::hub::query::{ListFilter, Query, WhoFields, wildcard_matches};
use crate::limits::{
    IRC_MAX_CLIENT_TAGS, IRC_MAX_JOIN_TARGETS, IRC_MAX_LINE, IRC_MAX_MODES, IRC_MAX_TARGETS,
    IRC_MAX_WHO_MASK, IRC_MONITOR_MAX,
};
use crate::moderation::Mask;
use crate::types::{MsgId, Nick, RoomName, Text};
use crate::wire::ClientMsg;
use bytes::Bytes;

/// Commands whose answer is one line (or none): a label is put on it, or an `ACK` sent. Every
/// other labeled command is answered in a `labeled-response` batch.
const ONE_REPLY: [&str; 10] = [
    "PRIVMSG", "NOTICE", "TAGMSG", "PING", "PONG", "AWAY", "ISON", "USERHOST", "TIME", "TOPIC",
];

/// The commands a registered client may send (every other one is answered `421` alone, so a
/// labeled one gets the label on its `421`, not a batch around it).
pub(super) const KNOWN: [&str; 44] = [
    "CAP",
    "PASS",
    "USER",
    "AUTHENTICATE",
    "NICK",
    "PING",
    "PONG",
    "TAGMSG",
    "QUIT",
    "CHATHISTORY",
    "JOIN",
    "PART",
    "PRIVMSG",
    "NOTICE",
    "TOPIC",
    "NAMES",
    "WHO",
    "WHOIS",
    "WHOWAS",
    "LIST",
    "MODE",
    "AWAY",
    "MOTD",
    "LUSERS",
    "TIME",
    "VERSION",
    "ISON",
    "USERHOST",
    "KICK",
    "KILL",
    "TAKEOVER",
    "CLOSE",
    "WALLOPS",
    "INVITE",
    "OPER",
    "INFO",
    "ADMIN",
    "LINKS",
    "STATS",
    "MONITOR",
    "SETNAME",
    "SEARCH",
    "HELP",
    "HELPOP",
];

/// What closes the answer to `running`: its labeled batch's end, or an `ACK` for a labeled
/// line that got no answer (`answered`, or answered before it was kept).
pub(super) fn close(running: Running, answered: bool, server: &str) -> Option<Bytes> {
    let mut out = String::new();
    match running.label {
        Label::None => return None,
        Label::Batch(id) => write_line(
            &mut out,
            &Tags::none(),
            server,
            "BATCH",
            &[&format!("-{id}")],
            false,
        ),
        Label::Single(_) if answered || running.answered => return None,
        Label::Single(label) => write_line(
            &mut out,
            &Tags::none().with("label", &label),
            server,
            "ACK",
            &[],
            false,
        ),
    }
    Some(Bytes::from(out))
}

impl Irc {
    /// The answer to a line that was not UTF-8 (natter advertises `UTF8ONLY`): `FAIL <command>
    /// INVALID_UTF8`, with the line's label for a client with labeled-response; for a
    /// `NOTICE` nothing (no error reply to a notice, RFC 2812 3.3.2 and the Modern IRC
    /// document), but a labeled one's `ACK`.
    pub(super) fn not_utf8(&self, lossy: &str) -> Bytes {
        let server = self.server.as_str();
        let msg = Message::parse(lossy);
        let verb = msg.as_ref().map_or_else(|| "*".to_owned(), Message::verb);
        let label = msg.as_ref().and_then(|m| match self.label_of(m, &verb) {
            Label::None => None,
            // A label is one reply's here: the answer is one line at most.
            _ => m.tag("label").map(std::borrow::Cow::into_owned),
        });
        let tags = label
            .as_deref()
            .map_or_else(Tags::none, |l| Tags::none().with("label", l));
        let mut out = String::new();
        if verb == "NOTICE" {
            if label.is_some() {
                write_line(&mut out, &tags, server, "ACK", &[], false);
            }
            return Bytes::from(out);
        }
        let verb = shown(&verb);
        write_line(
            &mut out,
            &tags,
            server,
            "FAIL",
            &[
                &verb,
                "INVALID_UTF8",
                "Message rejected: natter takes UTF-8 only",
            ],
            true,
        );
        Bytes::from(out)
    }
}

/// What a `LIST` asks (`LIST [<channel>{,<channel>}] [<elistcond>{,<elistcond>}]`, each
/// parameter either): the channels it names, the ELIST conditions (`M` name globs, `N` their
/// negations, `U` member counts; creation and topic times, `C` and `T`, are not offered and
/// are ignored), and whether it named any channel at all (then it lists those only, none if
/// none of them can be a natter room). At most [`IRC_MAX_JOIN_TARGETS`] names and
/// [`IRC_MAX_TARGETS`] globs (each matched against every room: the hub's work stays within
/// what one `WHO` mask costs); a glob longer than [`IRC_MAX_WHO_MASK`] is ignored.
fn list_asked(msg: &Message<'_>) -> (Vec<RoomName>, ListFilter, bool) {
    let (mut named, mut filter, mut asked) = (Vec::new(), ListFilter::default(), false);
    let items = (0..2)
        .filter_map(|i| msg.param(i))
        .flat_map(|p| p.split(','))
        .filter(|i| !i.is_empty())
        .take(4 * IRC_MAX_JOIN_TARGETS);
    for item in items {
        let glob = |g: &str| (g.len() <= IRC_MAX_WHO_MASK).then(|| g.to_owned());
        let count = |n: &str| n.parse::<usize>().ok();
        if let Some(n) = item.strip_prefix('>').and_then(count) {
            filter.above = Some(filter.above.map_or(n, |a| a.max(n)));
        } else if let Some(n) = item.strip_prefix('<').and_then(count) {
            filter.below = Some(filter.below.map_or(n, |b| b.min(n)));
        } else if let Some(g) = item.strip_prefix('!') {
            if filter.not.len() + filter.masks.len() < IRC_MAX_TARGETS {
                filter.not.extend(glob(g));
            }
        } else if item.contains(['*', '?']) {
            if filter.not.len() + filter.masks.len() < IRC_MAX_TARGETS {
                filter.masks.extend(glob(item));
            }
        } else if item.starts_with('#') {
            asked = true;
            if named.len() < IRC_MAX_JOIN_TARGETS {
                named.extend(names::channel(item).ok());
            }
        }
    }
    (named, filter, asked)
}

/// A command's name as it can be shown in a reply: printable ASCII, at most 32 characters, `*`
/// if nothing is left.
fn shown(verb: &str) -> String {
    let shown: String = verb
        .chars()
        .filter(char::is_ascii_graphic)
        .take(32)
        .collect();
    if shown.is_empty() { "*".into() } else { shown }
}

/// `HELP` alone: the commands natter takes; `HELP command`: its parameters and what it does
/// (`704`, `705`s, `706`, the subject `*` or the command), or `524` for one it does not take.
fn help(msg: &Message<'_>, plan: &mut Plan<'_>) {
    let (subject, lines) = match msg.param(0).filter(|s| !s.is_empty()) {
        None => ("*".to_owned(), super::help::index()),
        Some(asked) => match super::help::about(asked) {
            Some(lines) => (asked.trim_start_matches('/').to_ascii_uppercase(), lines),
            None => {
                return plan.num(
                    ERR_HELPNOTFOUND,
                    &[&shown(asked)],
                    "No help available on this topic",
                );
            }
        },
    };
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        let code = match i {
            0 => RPL_HELPSTART,
            _ if i == last => RPL_ENDOFHELP,
            _ => RPL_HELPTXT,
        };
        plan.num(code, &[&subject], line);
    }
}

/// Steps being made for one line, with the words of answers the dialect makes itself.
struct Plan<'a> {
    steps: &'a mut Vec<Step>,
    /// The server's name, the source of its lines.
    server: ServerName,
    /// The client's nick: before registration the one it gave, or `*` if none.
    me: String,
    tags: Tags,
    answer: String,
}

impl Plan<'_> {
    /// A numeric from the server to the client: `code`, the client, `middle` params, `text`.
    fn num(&mut self, code: &str, middle: &[&str], text: &str) {
        let mut params = Vec::with_capacity(middle.len() + 2);
        params.push(self.me.as_str());
        // What the client named is echoed cut, and the text cut to what is left of the line.
        params.extend(middle.iter().map(|p| echoed(p)));
        let room = IRC_MAX_LINE.saturating_sub(body_len(self.server.as_str(), code, &params, 0));
        let text = fit(text, room);
        params.push(&text);
        write_line(
            &mut self.answer,
            &self.tags,
            self.server.as_str(),
            code,
            &params,
            true,
        );
    }

    /// A refusal of the line: `num`, except for a `NOTICE` (`notice`), which is never
    /// answered with an error (RFC 2812, 3.3.2: servers too "MUST NOT send any error reply
    /// back to the client on receipt of a notice").
    fn refuse(&mut self, notice: bool, code: &str, middle: &[&str], text: &str) {
        if !notice {
            self.num(code, middle, text);
        }
    }

    /// Any line from the server. Its last parameter may echo what the client sent (a `PING`'s
    /// token, a `CAP REQ`'s list): it is cut so that the line fits [`IRC_MAX_LINE`].
    fn line(&mut self, command: &str, params: &[&str], trailing: bool) {
        let server = self.server.as_str();
        let mut params = params.to_vec();
        if let Some((last, middle)) = params.split_last_mut() {
            *last = cut(
                last,
                IRC_MAX_LINE.saturating_sub(body_len(server, command, middle, 0)),
            );
        }
        write_line(
            &mut self.answer,
            &self.tags,
            server,
            command,
            &params,
            trailing,
        );
    }

    /// A step; answers made so far go first, to keep the order.
    fn step(&mut self, step: Step) {
        self.flush();
        self.steps.push(step);
    }

    fn request(&mut self, r: Request) {
        self.step(Step::Request(r));
    }

    fn msg(&mut self, m: ClientMsg) {
        self.request(Request::Msg(m));
    }

    /// A message, with the line's client-only tags if it has any ([`Request::Tagged`]).
    fn said(&mut self, m: ClientMsg, tags: Option<&std::sync::Arc<str>>) {
        match tags {
            Some(tags) => self.request(Request::Tagged {
                msg: m,
                tags: tags.clone(),
            }),
            None => self.msg(m),
        }
    }

    fn query(&mut self, q: Query) {
        self.request(Request::Query(q));
    }

    fn flush(&mut self) {
        if !self.answer.is_empty() {
            let words = Bytes::from(core::mem::take(&mut self.answer));
            self.steps
                .push(Step::Request(Request::Answer(Reply::Own(words))));
        }
    }

    fn need_more(&mut self, verb: &str) {
        self.num(ERR_NEEDMOREPARAMS, &[verb], "Not enough parameters");
    }

    /// The answers `words` write, for a server admin only ([`Request::AdminsOnly`]): anyone
    /// else gets 481, whatever the line's parameters (as solanum answers `KILL` and `WALLOPS`).
    fn admins_only(&mut self, words: impl FnOnce(&mut Self)) {
        self.flush();
        words(self);
        let words = Bytes::from(core::mem::take(&mut self.answer));
        self.steps
            .push(Step::Request(Request::AdminsOnly(Reply::Own(words))));
    }
}

impl Irc {
    /// Learns from the hub where the registration stands, and reads `line`.
    pub(super) fn read_line(
        &mut self,
        line: &str,
        me: Option<&Nick>,
        next_id: MsgId,
        steps: &mut Vec<Step>,
    ) {
        match me {
            Some(nick) => self.nick = Some(nick.clone()),
            None if self.hello_sent => {
                // The hello was refused (its nick is taken): a new NICK is wanted.
                self.wanted = None;
            }
            None => {}
        }
        self.hello_sent = false;
        let Some(msg) = Message::parse(line) else {
            return;
        };
        let verb = msg.verb();
        self.lines += 1;
        let label = self.label_of(&msg, &verb);
        // A line kept for a late answer is complete when the next line runs (the hub runs
        // what follows it only once nothing of it waits): its end comes first.
        let answer = self
            .kept
            .take()
            .and_then(|k| close(k, false, self.server.as_str()))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut plan = Plan {
            steps,
            server: self.server.clone(),
            me: self.named().map_or("*", Nick::as_str).to_owned(),
            tags: Tags::none(),
            answer,
        };
        if let Label::Batch(id) = &label {
            let label = msg.tag("label").unwrap_or_default();
            let open = Tags::none().with("label", &label);
            write_line(
                &mut plan.answer,
                &open,
                self.server.as_str(),
                "BATCH",
                &[&format!("+{id}"), "labeled-response"],
                false,
            );
        }
        self.busy = true;
        self.running = Some(Running {
            verb: verb.clone(),
            label,
            sent: Vec::new(),
            // Only the answers to these name what was asked in their end-of-list numerics.
            target: match verb.as_str() {
                "WHO" | "WHOIS" | "INVITE" | "KILL" => msg.param(0).unwrap_or("*").to_owned(),
                "KICK" => msg
                    .param(1)
                    .and_then(|n| n.split(',').next())
                    .unwrap_or("*")
                    .to_owned(),
                "MODE" => msg.param(2).unwrap_or_default().to_owned(),
                _ => String::new(),
            },
            modes_asked: verb == "MODE"
                && msg.param(0).is_some_and(|t| t.starts_with('#'))
                && msg.param(1).is_none(),
            quiets_asked: verb == "MODE"
                && msg.param(0).is_some_and(|t| t.starts_with('#'))
                && msg.param(1).map(|m| m.trim_start_matches(['+', '-'])) == Some("q")
                && msg.param(2).is_none(),
            reason: None,
            number: self.lines,
            answered: false,
            whox: (verb == "WHO")
                .then(|| msg.param(1)?.split_once('%').map(|(_, w)| Whox::parse(w)))
                .flatten(),
        });
        plan.tags = self.reply_tags();
        if let Some(words) = self.not_irc(line) {
            plan.step(Step::Fatal {
                limit: None,
                kind: crate::wire::ErrorKind::Protocol,
                detail: words.into(),
            });
        } else if msg.tags_len() > IRC_MAX_CLIENT_TAGS {
            // IRCv3 message-tags: more tag data than a client may send is refused whole.
            plan.num(
                ERR_INPUTTOOLONG,
                &[],
                &format!("Input line was too long (message tags over {IRC_MAX_CLIENT_TAGS} bytes)"),
            );
        } else if self.registered() {
            self.command(&msg, &verb, next_id, &mut plan);
        } else {
            self.registering(&msg, &verb, &mut plan);
        }
        plan.flush();
    }

    /// Why a line no IRC client sends before registering closes the connection: an HTTP
    /// request line or `Host:` header (a web page posting a form to this port, whose body's
    /// lines would otherwise register a nick and say them in a channel, as the text door
    /// refuses it), or a PROXY header first from an address not trusted as a proxy (the hub
    /// takes a trusted proxy's header before the dialect sees any line).
    fn not_irc(&self, line: &str) -> Option<&'static str> {
        if self.registered() {
            None
        } else if crate::hub::dialect::looks_like_http(line) {
            Some("this port speaks IRC, not HTTP")
        } else if self.lines == 1 && line.starts_with("PROXY ") {
            Some("a PROXY header is only taken from a trusted proxy")
        } else {
            None
        }
    }

    /// The line's steps have run: closes its batch, or acknowledges a labeled line that got
    /// no answer; unless part of its answer comes `later`, when it is kept for that answer.
    pub(super) fn line_done(&mut self, answered: bool, later: bool) -> Option<Bytes> {
        self.busy = false;
        let mut running = self.running.take()?;
        if later && self.registered() {
            running.answered |= answered;
            // One line is kept at a time: what follows a line that waits waits too, so an
            // earlier one is complete by now.
            return self
                .kept
                .replace(running)
                .and_then(|k| close(k, false, self.server.as_str()));
        }
        close(running, answered, self.server.as_str())
    }

    /// A line refused by flood control before its turn ([`super::Dialect::refusing`]): it
    /// runs as a line with no steps, so the refusal is its answer: `263 <command>` with its
    /// label, nothing for a `NOTICE` (no error reply to a notice) but a labeled one's `ACK`.
    /// Its answer is one line at most, so a label is a single reply's.
    pub(super) fn refused_line(&mut self, line: &str) -> bool {
        if self.running.is_some() {
            return false;
        }
        let Some(msg) = Message::parse(line) else {
            return false;
        };
        let verb = msg.verb();
        self.lines += 1;
        let label = match self.label_of(&msg, &verb) {
            Label::Batch(_) => msg
                .tag("label")
                .map_or(Label::None, |l| Label::Single(l.into_owned())),
            label => label,
        };
        self.busy = true;
        self.running = Some(Running::new(verb, label, self.lines));
        true
    }

    /// The `ACK` a `PONG` (`line`) gets when it is labeled for a client with labeled-response.
    pub(super) fn pong_ack(&self, line: &str) -> Option<Bytes> {
        let msg = Message::parse(line)?;
        let Label::Single(label) = self.label_of(&msg, "PONG") else {
            return None;
        };
        let running = Running::new("PONG".into(), Label::Single(label), self.lines);
        close(running, false, self.server.as_str())
    }

    /// How replies to `msg` are labeled: only for clients with labeled-response and batch.
    fn label_of(&self, msg: &Message<'_>, verb: &str) -> Label {
        use super::caps::Cap;
        if !(self.caps.has(Cap::LabeledResponse) && self.caps.has(Cap::Batch)) {
            return Label::None;
        }
        let Some(label) = msg.tag("label").filter(|l| !l.is_empty()) else {
            return Label::None;
        };
        let one_target = msg.param(0).is_none_or(|t| !t.contains(','));
        // A registered client's NICK is answered by its `NICK` line or one refusal; before
        // registration it may complete it (the welcome's many lines).
        let one_reply = ONE_REPLY.contains(&verb)
            || (self.registered() && (verb == "NICK" || !KNOWN.contains(&verb)));
        if one_reply && one_target {
            Label::Single(label.into_owned())
        } else {
            Label::Batch(format!("L{}", self.lines))
        }
    }

    /// Tags every reply to the running line carries.
    pub(super) fn reply_tags(&self) -> Tags {
        match self.running.as_ref().map(|r| &r.label) {
            Some(Label::Single(l)) => Tags::none().with("label", l),
            Some(Label::Batch(id)) => Tags::none().with("batch", id),
            _ => Tags::none(),
        }
    }

    /// Before the welcome: capabilities, the nick and user, and nothing else.
    fn registering(&mut self, msg: &Message<'_>, verb: &str, plan: &mut Plan<'_>) {
        match verb {
            "CAP" => self.cap(msg, plan),
            // natter has no server password: accounts sign in with SASL.
            "PASS" => {}
            "AUTHENTICATE" => return self.authenticate(msg, plan),
            "NICK" => {
                let Some(want) = msg.param(0) else {
                    return plan.num(ERR_NONICKNAMEGIVEN, &[], "No nickname given");
                };
                match names::nick(want) {
                    Ok(nick) => self.wanted = Some(nick),
                    Err(words) => return plan.num(ERR_ERRONEUSNICKNAME, &[want], &words),
                }
            }
            "USER" => {
                // Four parameters, the user name and the real name not empty (a real name
                // given as `:` is none).
                let empty = |i: usize| msg.param(i).is_none_or(str::is_empty);
                if msg.params.len() < 4 || empty(0) || empty(3) {
                    return plan.need_more(verb);
                }
                let (Some(user), Some(real)) = (msg.param(0), msg.param(3)) else {
                    return plan.need_more(verb);
                };
                let username = match names::username(user) {
                    Ok(u) => u,
                    Err(words) => return plan.num(ERR_INVALIDUSERNAME, &[], &words),
                };
                let Some(realname) = names::realname(real) else {
                    return plan.num(
                        ERR_NEEDMOREPARAMS,
                        &[verb],
                        "Not enough parameters: the real name has nothing but formatting",
                    );
                };
                self.username = username;
                self.realname = realname;
                self.user_given = true;
            }
            "PING" => return ping(msg, plan),
            "QUIT" => {
                if let Some(r) = self.running.as_mut() {
                    r.reason = msg.param(0).and_then(|r| Text::new(&names::plain(r)).ok());
                }
                return plan.step(Step::Fatal {
                    limit: None,
                    kind: crate::wire::ErrorKind::Protocol,
                    detail: "goodbye".into(),
                });
            }
            _ => return plan.num(ERR_NOTREGISTERED, &[], "You have not registered"),
        }
        self.try_register(plan);
    }

    /// With a nick and a user and no capability negotiation open: the hello (the hub's welcome
    /// brings the numbers and the message of the day, before any room an account is in).
    fn try_register(&mut self, plan: &mut Plan<'_>) {
        let Some(nick) = self.wanted.clone() else {
            return;
        };
        if !self.user_given || self.negotiating || self.hello_sent {
            return;
        }
        self.hello_sent = true;
        plan.step(Step::Hello(Hello {
            version: None,
            nick: Some(nick),
            resume: None,
            autojoin: None,
            taken: IfTaken::Refuse,
        }));
    }

    /// `AUTHENTICATE`: SASL PLAIN (RFC 4616) before registration. The credentials become a
    /// sign-in the hub checks; its answer is `900`/`903` or `904`.
    fn authenticate(&mut self, msg: &Message<'_>, plan: &mut Plan<'_>) {
        use base64::Engine;
        /// A line of AUTHENTICATE data is at most this long; exactly this long means more follows.
        const CHUNK: usize = 400;
        /// Enough for a nick and a password of the longest kind, in base64.
        const MAX_DATA: usize = 800;
        if !self.caps.has(caps::Cap::Sasl) {
            return plan.num(
                ERR_SASLFAIL,
                &[],
                "SASL authentication failed: CAP REQ sasl first",
            );
        }
        let Some(arg) = msg.param(0) else {
            return plan.need_more("AUTHENTICATE");
        };
        if arg == "*" {
            self.sasl = None;
            return plan.num(ERR_SASLABORTED, &[], "SASL authentication aborted");
        }
        let Some(mut data) = self.sasl.take() else {
            if arg.eq_ignore_ascii_case("PLAIN") {
                self.sasl = Some(String::new());
                return plan.line("AUTHENTICATE", &["+"], false);
            }
            plan.num(RPL_SASLMECHS, &["PLAIN"], "are available SASL mechanisms");
            return plan.num(ERR_SASLFAIL, &[], "SASL authentication failed");
        };
        if arg.len() > CHUNK {
            return plan.num(ERR_SASLTOOLONG, &[], "SASL message too long");
        }
        if data.len() + arg.len() > MAX_DATA {
            // Lines of the right size that never end: the exchange fails (as Ergo answers).
            return plan.num(
                ERR_SASLFAIL,
                &[],
                "SASL authentication failed: the credentials are too long",
            );
        }
        if arg != "+" {
            data.push_str(arg);
        }
        if arg.len() == CHUNK {
            self.sasl = Some(data);
            return;
        }
        let plain = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let creds = plain.as_deref().and_then(|p| {
            let mut parts = p.split('\0');
            let (authz, authc, pass) = (parts.next()?, parts.next()?, parts.next()?);
            let name = if authc.is_empty() { authz } else { authc };
            (parts.next().is_none() && !pass.is_empty())
                .then(|| (Nick::new(name), pass.to_owned(), authz))
        });
        // Acting as another account than the one whose password is given (RFC 4616's
        // authzid) is not supported: refused, rather than signed in as someone not asked for.
        if let Some((Ok(account), _, authz)) = &creds
            && !authz.is_empty()
            && !authz.eq_ignore_ascii_case(account.as_str())
        {
            return plan.num(
                ERR_SASLFAIL,
                &[],
                "SASL authentication failed: an authzid other than the account is not supported",
            );
        }
        let creds = creds.map(|(account, password, _)| (account, password));
        match creds {
            Some((Ok(account), password)) => plan.msg(ClientMsg::SignIn {
                account,
                proof: crate::wire::Proof::Password(crate::types::Password(password)),
                remember: false,
            }),
            // The right shape, with a name no account can have: why, as nc's `/login` says it.
            Some((Err(e), _)) => plan.num(
                ERR_SASLFAIL,
                &[],
                &format!("SASL authentication failed: {e}"),
            ),
            None => plan.num(
                ERR_SASLFAIL,
                &[],
                "SASL authentication failed: not authzid NUL authcid NUL password",
            ),
        }
    }

    fn cap(&mut self, msg: &Message<'_>, plan: &mut Plan<'_>) {
        let Some(sub) = msg.param(0) else {
            return plan.need_more("CAP");
        };
        let sub = sub.to_ascii_uppercase();
        let me = plan.me.clone();
        match sub.as_str() {
            "LS" => {
                self.negotiating |= !self.registered();
                let v302 = msg
                    .param(1)
                    .is_some_and(|v| v.parse::<u32>().is_ok_and(|v| v >= 302));
                plan.line("CAP", &[&me, "LS", &caps::offered(v302)], true);
            }
            "LIST" => plan.line("CAP", &[&me, "LIST", &self.caps.names()], true),
            "REQ" => {
                self.negotiating |= !self.registered();
                let list = msg.param(1).unwrap_or("");
                match self.caps.requested(list) {
                    Some(caps) => {
                        self.set_caps(caps);
                        plan.line("CAP", &[&me, "ACK", list], true);
                    }
                    None => plan.line("CAP", &[&me, "NAK", list], true),
                }
            }
            "END" => {
                if !self.registered() {
                    self.negotiating = false;
                    self.try_register(plan);
                }
            }
            _ => plan.num(ERR_INVALIDCAPCMD, &[&sub], "Invalid CAP command"),
        }
    }

    /// After the welcome: every command.
    fn command(&mut self, msg: &Message<'_>, verb: &str, next_id: MsgId, plan: &mut Plan<'_>) {
        match verb {
            "CAP" => self.cap(msg, plan),
            "PASS" | "USER" => plan.num(ERR_ALREADYREGISTERED, &[], "You may not reregister"),
            "AUTHENTICATE" => plan.num(
                ERR_SASLALREADY,
                &[],
                "You have already registered: SASL is only before registration",
            ),
            "NICK" => match msg.param(0) {
                None => plan.num(ERR_NONICKNAMEGIVEN, &[], "No nickname given"),
                Some(want) => match names::nick(want) {
                    Ok(nick) => plan.msg(ClientMsg::Nick { nick }),
                    Err(words) => plan.num(ERR_ERRONEUSNICKNAME, &[want], &words),
                },
            },
            "PING" => ping(msg, plan),
            "TAGMSG" => tagmsg(msg, plan),
            "QUIT" => {
                let reason = msg.param(0).and_then(|r| Text::new(&names::plain(r)).ok());
                // For its `ERROR :Closing Link: ... (Quit: reason)`.
                if let Some(r) = self.running.as_mut() {
                    r.reason = reason.clone();
                }
                plan.msg(ClientMsg::Quit { reason });
            }
            "CHATHISTORY" => chathistory(msg, plan),
            "JOIN" => self.join(msg, plan),
            "PART" => self.part(msg, plan),
            "PRIVMSG" | "NOTICE" => self.say(msg, verb, next_id, plan),
            "TOPIC" => topic(msg, plan),
            // `NAMES #a,#b`: each channel's names in turn (as many as a `JOIN` takes), as
            // ergo and InspIRCd answer; none is left out without a word.
            "NAMES" => match msg.param(0).filter(|t| t.split(',').any(|n| !n.is_empty())) {
                None => plan.num(RPL_ENDOFNAMES, &["*"], "End of /NAMES list"),
                Some(list) => {
                    for (i, name) in list.split(',').filter(|n| !n.is_empty()).enumerate() {
                        if i == IRC_MAX_JOIN_TARGETS {
                            return plan.num(
                                ERR_TOOMANYTARGETS,
                                &[name],
                                "Too many channels in one NAMES",
                            );
                        }
                        match names::channel(name) {
                            Ok(room) => plan.msg(ClientMsg::Who { room }),
                            Err(_) => plan.num(RPL_ENDOFNAMES, &[name], "End of /NAMES list"),
                        }
                    }
                }
            },
            // `WHO #chan`, `WHO nick`, or `WHO mask [o]` (a glob on nick, user name, host and
            // real name; `o`: server admins only); WHOX's `%fields[,token]` after the flags
            // (kept with the running line) makes the replies `354`s.
            "WHO" => match msg.param(0) {
                None => plan.num(RPL_ENDOFWHO, &["*"], "End of WHO list"),
                Some(mask) if mask.starts_with('#') => match names::channel(mask) {
                    Ok(room) => plan.query(Query::Who(room)),
                    Err(_) => plan.num(RPL_ENDOFWHO, &[mask], "End of WHO list"),
                },
                Some(mask) => {
                    // `WHO mask o%tn,42`: flags (`o`, and what to match), then WHOX's fields.
                    let flags = msg.param(1).and_then(|f| f.split('%').next()).unwrap_or("");
                    let ops = flags.contains('o');
                    match mask {
                        _ if mask.len() > IRC_MAX_WHO_MASK => plan.num(
                            RPL_ENDOFWHO,
                            &[mask],
                            &format!(
                                "End of WHO list (masks are at most {IRC_MAX_WHO_MASK} bytes)"
                            ),
                        ),
                        _ => plan.query(Query::WhoMask {
                            mask: mask.to_owned(),
                            ops,
                            fields: WhoFields::from_flags(flags),
                        }),
                    }
                }
            },
            "WHOIS" => {
                // `WHOIS [server] nick[,nick]`: the nick is the last parameter; one is answered.
                let Some(target) = msg.params.iter().rev().find(|p| !p.is_empty()) else {
                    return plan.num(ERR_NONICKNAMEGIVEN, &[], "No nickname given");
                };
                let target = target.split(',').next().unwrap_or(target);
                if let Some(r) = self.running.as_mut() {
                    r.target = target.to_owned();
                }
                match Nick::new(target) {
                    Ok(nick) => plan.query(Query::Whois(nick)),
                    Err(_) => {
                        plan.num(ERR_NOSUCHNICK, &[target], "No such nick/channel");
                        plan.num(RPL_ENDOFWHOIS, &[target], "End of /WHOIS list");
                    }
                }
            }
            // `WHOWAS nick [count [server]]`: the newest `count` records (0 or less: all),
            // newest first. The first nick of a list is answered.
            "WHOWAS" => match msg
                .param(0)
                .and_then(|p| p.split(',').find(|n| !n.is_empty()))
            {
                None => plan.num(ERR_NONICKNAMEGIVEN, &[], "No nickname given"),
                Some(nick) => match Nick::new(nick) {
                    Ok(nick) => {
                        let count = msg
                            .param(1)
                            .and_then(|c| c.parse::<i64>().ok())
                            .map_or(0, |c| usize::try_from(c).unwrap_or(0));
                        plan.query(Query::Whowas { nick, count });
                    }
                    Err(_) => {
                        plan.num(ERR_WASNOSUCHNICK, &[nick], "There was no such nickname");
                        plan.num(RPL_ENDOFWHOWAS, &[nick], "End of WHOWAS");
                    }
                },
            },
            // `LIST #a,#b` lists those channels; `>N`, `<N` (members), `#ru*` and `!*test*`
            // (name globs) filter the list (ELIST=MNU).
            "LIST" => {
                let (named, filter, asked) = list_asked(msg);
                if asked && named.is_empty() {
                    plan.num(RPL_LISTSTART, &["Channel"], "Users  Name");
                    return plan.num(RPL_LISTEND, &[], "End of /LIST");
                }
                plan.query(Query::List(named, filter));
            }
            "MODE" => self.mode(msg, plan),
            "AWAY" => {
                let text = msg.param(0).and_then(|t| Text::new(&names::plain(t)).ok());
                plan.query(Query::Away(text));
            }
            "MOTD" if self.no_such_server(msg.param(0), plan) => {}
            "MOTD" => plan.query(Query::Motd),
            "LUSERS" => plan.query(Query::Counts),
            "TIME" if self.no_such_server(msg.param(0), plan) => {}
            "TIME" => plan.query(Query::Time),
            "INFO" => {
                let lines = [
                    format!("natter {}", env!("CARGO_PKG_VERSION")),
                    "A chat server: natter's clients, the browser page, nc and IRC clients, all \
                     in the same rooms."
                        .to_owned(),
                    "Its IRC listener speaks RFC 1459/2812 with IRCv3 capabilities.".to_owned(),
                ];
                for line in &lines {
                    plan.num(RPL_INFO, &[], line);
                }
                plan.num(RPL_ENDOFINFO, &[], "End of INFO list");
            }
            // A network of one server, as RFC 2812 (3.4.9) has a server answer: natter keeps
            // no contact details for its operator, and says so. A target not this server is
            // `402` (`Self::no_such_server`), as for TIME, MOTD and VERSION.
            "ADMIN" if self.no_such_server(msg.param(0), plan) => {}
            "ADMIN" => {
                plan.num(RPL_ADMINME, &[self.server.as_str()], "Administrative info");
                plan.num(
                    RPL_ADMINLOC1,
                    &[],
                    "natter: natter's clients, web pages, nc and IRC in the same rooms",
                );
                plan.num(
                    RPL_ADMINLOC2,
                    &[],
                    "Run by whoever runs this server: natter keeps no contact details",
                );
                plan.num(RPL_ADMINEMAIL, &[], "No contact address is set");
            }
            // This server alone (RFC 2812 3.4.5), if it matches the mask. `LINKS remote mask`
            // asks `remote`, which must be this server.
            "LINKS" if msg.params.len() > 1 && self.no_such_server(msg.param(0), plan) => {}
            "LINKS" => {
                // Up to its first space, as it is echoed (`LINKS :a b`).
                let mask = msg.params.last().and_then(|m| m.split(' ').next());
                let mask = mask.filter(|m| !m.is_empty()).unwrap_or("*");
                let server = self.server.as_str();
                if wildcard_matches(mask, server) {
                    plan.num(RPL_LINKS, &[server, server], "0 natter");
                }
                plan.num(RPL_ENDOFLINKS, &[mask], "End of /LINKS list");
            }
            // natter keeps none of IRC's statistics (RFC 2812 3.4.4): any query's end alone.
            "STATS" => {
                let Some(query) = msg.param(0).and_then(|q| q.chars().next()) else {
                    return plan.need_more(verb);
                };
                if self.no_such_server(msg.param(1), plan) {
                    return;
                }
                plan.num(
                    RPL_ENDOFSTATS,
                    &[&query.to_string()],
                    "End of /STATS report",
                );
            }
            // The version, then the ISUPPORT tokens again (Modern IRC: "SHOULD respond with a
            // RPL_VERSION reply and one or more RPL_ISUPPORT replies").
            "VERSION" if self.no_such_server(msg.param(0), plan) => {}
            "VERSION" => {
                plan.num(
                    RPL_VERSION,
                    &[
                        &format!("natter-{}.", env!("CARGO_PKG_VERSION")),
                        self.server.as_str(),
                    ],
                    "natter's IRC listener",
                );
                for tokens in super::words::isupport_lines() {
                    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
                    plan.num(RPL_ISUPPORT, &tokens, "are supported by this server");
                }
            }
            "ISON" | "USERHOST" => {
                if msg.params.is_empty() {
                    return plan.need_more(verb);
                }
                // ISON's nicks may come as one trailing parameter.
                let max = if verb == "USERHOST" { 5 } else { 100 };
                let nicks: Vec<Nick> = msg
                    .params
                    .iter()
                    .flat_map(|p| p.split(' '))
                    .filter_map(|n| Nick::new(n).ok())
                    .take(max)
                    .collect();
                plan.query(Query::Users(nicks));
            }
            "KICK" => match (msg.param(0), msg.param(1)) {
                (Some(chan), Some(who)) => {
                    let room = match names::channel(chan) {
                        Ok(room) => room,
                        Err(bad) => return plan.num(bad.numeric, &[chan], &bad.words),
                    };
                    let reason = msg.param(2).and_then(|r| Text::new(&names::plain(r)).ok());
                    // `KICK #a bob,carol`: as many as a PRIVMSG names (TARGMAX KICK:4), a
                    // `407` for the first past them.
                    for (i, nick) in who.split(',').filter(|n| !n.is_empty()).enumerate() {
                        if i == IRC_MAX_TARGETS {
                            return plan.num(
                                ERR_TOOMANYTARGETS,
                                &[nick],
                                "Too many nicks in one KICK",
                            );
                        }
                        match Nick::new(nick) {
                            Ok(nick) => plan.msg(ClientMsg::Moderate {
                                room: room.clone(),
                                action: crate::wire::ModAction::Kick {
                                    nick,
                                    reason: reason.clone(),
                                },
                            }),
                            Err(_) => plan.num(ERR_NOSUCHNICK, &[nick], "No such nick/channel"),
                        }
                    }
                }
                _ => plan.need_more(verb),
            },
            // A server admin's powers for this user, proved by the admin account's password.
            "OPER" => match (msg.param(0).map(Nick::new), msg.param(1)) {
                (Some(Ok(name)), Some(password)) => plan.request(Request::Oper {
                    name,
                    password: crate::types::Password(password.to_owned()),
                }),
                (Some(Err(_)), Some(_)) => {
                    plan.num(ERR_NOOPERHOST, &[], "No O-lines for your host")
                }
                _ => plan.need_more(verb),
            },
            // IRCv3 MONITOR: `+`/`-` a comma list, `C`, `L`, `S`. Targets that are no nick (a
            // mask, say) are left out: nobody ever has them.
            "MONITOR" => {
                let targets = || -> Vec<Nick> {
                    msg.param(1)
                        .unwrap_or_default()
                        .split(',')
                        .filter_map(|n| Nick::new(n).ok())
                        .take(IRC_MONITOR_MAX + 1)
                        .collect()
                };
                let op = match msg.param(0) {
                    Some("+") if msg.param(1).is_some() => Some(MonitorOp::Add(targets())),
                    Some("-") if msg.param(1).is_some() => Some(MonitorOp::Remove(targets())),
                    Some(c) if c.eq_ignore_ascii_case("C") => Some(MonitorOp::Clear),
                    Some(l) if l.eq_ignore_ascii_case("L") => Some(MonitorOp::List),
                    Some(s) if s.eq_ignore_ascii_case("S") => Some(MonitorOp::Status),
                    _ => None,
                };
                match op {
                    Some(op) => plan.request(Request::Monitor(op)),
                    None => plan.need_more(verb),
                }
            }
            // A server admin's `/kill` and `/wall` (`[accounts] admins`); anyone else gets 481.
            "KILL" => match msg.param(0).map(Nick::new) {
                Some(Ok(nick)) => {
                    let reason = msg.param(1).and_then(|r| Text::new(&names::plain(r)).ok());
                    plan.msg(ClientMsg::Admin(crate::wire::AdminAction::Kill {
                        nick,
                        reason,
                    }));
                }
                Some(Err(_)) => plan.admins_only(|p| {
                    p.num(
                        ERR_NOSUCHNICK,
                        &[msg.param(0).unwrap_or("*")],
                        "No such nick/channel",
                    );
                }),
                None => plan.admins_only(|p| p.need_more(verb)),
            },
            // A server admin's `/takeover #room` (natter's own verb: IRC has none, and a client
            // sends it raw, as irssi's, WeeChat's and HexChat's `/quote TAKEOVER #room`); the
            // hub answers anyone else 481.
            "TAKEOVER" => match msg.param(0).map(|c| (c, names::channel(c))) {
                Some((_, Ok(room))) => {
                    plan.msg(ClientMsg::Admin(crate::wire::AdminAction::TakeOver(room)));
                }
                Some((name, Err(bad))) => {
                    let (numeric, words) = (bad.numeric, bad.words);
                    plan.admins_only(|p| p.num(numeric, &[name], &words));
                }
                None => plan.admins_only(|p| p.need_more(verb)),
            },
            // A server admin's `/close #room [reason]` (natter's own verb, sent raw as
            // TAKEOVER is: IRC has no way to close a channel, InspIRCd's `CLEARCHAN` only
            // empties one); the hub answers anyone else 481.
            "CLOSE" => match msg.param(0).map(|c| (c, names::channel(c))) {
                Some((_, Ok(room))) => {
                    let reason = msg
                        .param(1)
                        .filter(|r| !r.is_empty())
                        .and_then(|r| Text::new(&names::plain(r)).ok());
                    plan.msg(ClientMsg::Admin(crate::wire::AdminAction::Close {
                        room,
                        reason,
                    }));
                }
                Some((name, Err(bad))) => {
                    let (numeric, words) = (bad.numeric, bad.words);
                    plan.admins_only(|p| p.num(numeric, &[name], &words));
                }
                None => plan.admins_only(|p| p.need_more(verb)),
            },
            // To IRC users with user mode `w` (IRC's operators' channel); a server admin's
            // words to everyone are `NOTICE $*` (see `say`), natter's `/wall`.
            "WALLOPS" => match msg.param(0).map(|t| Text::new(&names::plain(t))) {
                Some(Ok(text)) => plan.request(Request::Wallops(text)),
                _ => plan.admins_only(|p| p.need_more(verb)),
            },
            "INVITE" => match (msg.param(0), msg.param(1)) {
                (Some(nick), Some(chan)) => match (Nick::new(nick), names::channel(chan)) {
                    (Ok(nick), Ok(room)) => {
                        plan.msg(ClientMsg::Moderate {
                            room,
                            action: crate::wire::ModAction::Invite(nick),
                        });
                    }
                    (Err(_), _) => plan.num(ERR_NOSUCHNICK, &[nick], "No such nick/channel"),
                    (_, Err(bad)) => plan.num(bad.numeric, &[chan], &bad.words),
                },
                // No parameters: the invitations the user has and has not used.
                (None, _) => plan.query(Query::Invites),
                _ => plan.need_more(verb),
            },
            // IRCv3 setname: checked as `USER`'s real name is; a client without the capability
            // is served all the same, silently (as the specification asks).
            "SETNAME" => match msg.param(0).filter(|r| !r.is_empty()).map(names::realname) {
                Some(Some(realname)) => plan.request(Request::SetName(realname.into())),
                _ => plan.line(
                    "FAIL",
                    &["SETNAME", "INVALID_REALNAME", "Realname is not valid"],
                    true,
                ),
            },
            // natter's own (no IRC client has a command for it; typed `/quote SEARCH ...`):
            // `/search [#room] words`, the hits and their count answered as NOTICEs.
            "SEARCH" => match search(msg) {
                Some(Ok((room, words))) => plan.msg(ClientMsg::Search { room, words }),
                Some(Err(bad)) => plan.num(bad.numeric, &[msg.param(0).unwrap_or("*")], &bad.words),
                // Words that are only formatting codes or invisible characters: nothing a
                // search can match, said in words as its answers are (not "not enough
                // parameters": the client gave some).
                None if search_typed(msg) => {
                    let me = plan.me.clone();
                    plan.line("NOTICE", &[&me, SEARCH_NOTHING], true);
                }
                None => plan.need_more(verb),
            },
            // `HELP [command]` (InspIRCd's `HELPOP` too): the commands, or a line for one.
            "HELP" | "HELPOP" => help(msg, plan),
            // A command added above goes into KNOWN too: a labeled one is otherwise taken
            // for an unknown command, answered by one labeled line.
            _ => {
                plan.num(ERR_UNKNOWNCOMMAND, &[&shown(verb)], "Unknown command");
            }
        }
    }

    fn join(&mut self, msg: &Message<'_>, plan: &mut Plan<'_>) {
        let Some(list) = msg.param(0) else {
            return plan.need_more("JOIN");
        };
        if list == "0" {
            for room in self.channels.clone() {
                plan.msg(ClientMsg::Part { room, reason: None });
            }
            return;
        }
        for (i, name) in list.split(',').filter(|n| !n.is_empty()).enumerate() {
            if i == IRC_MAX_JOIN_TARGETS {
                return plan.num(ERR_TOOMANYTARGETS, &[name], "Too many channels in one JOIN");
            }
            let key = msg
                .param(1)
                .and_then(|keys| keys.split(',').nth(i))
                .filter(|k| !k.is_empty() && *k != "x")
                .and_then(|k| Text::new(k).ok());
            match (names::channel(name), key) {
                (Ok(room), Some(key)) => plan.msg(ClientMsg::JoinKey { room, key }),
                (Ok(room), None) => plan.msg(ClientMsg::Join { room }),
                (Err(bad), _) => plan.num(bad.numeric, &[name], &bad.words),
            }
        }
    }

    fn part(&mut self, msg: &Message<'_>, plan: &mut Plan<'_>) {
        let Some(list) = msg.param(0) else {
            return plan.need_more("PART");
        };
        let reason = msg.param(1).and_then(|r| Text::new(&names::plain(r)).ok());
        if let Some(r) = self.running.as_mut() {
            r.reason = reason.clone();
        }
        for (i, name) in list.split(',').filter(|n| !n.is_empty()).enumerate() {
            if i == IRC_MAX_JOIN_TARGETS {
                return plan.num(ERR_TOOMANYTARGETS, &[name], "Too many channels in one PART");
            }
            match names::channel(name) {
                Ok(room) => plan.msg(ClientMsg::Part {
                    room,
                    reason: reason.clone(),
                }),
                Err(_) => plan.num(ERR_NOSUCHCHANNEL, &[name], "No such channel"),
            }
        }
    }

    /// PRIVMSG and NOTICE, to channels and nicks. A NOTICE stays a notice
    /// ([`ClientMsg::Notice`], [`ClientMsg::NoticeTo`]), so bots never answer it; an action
    /// (`\x01ACTION ...\x01`) in a NOTICE is an action, as IRC clients show it.
    fn say(&mut self, msg: &Message<'_>, verb: &str, next_id: MsgId, plan: &mut Plan<'_>) {
        let notice = verb == "NOTICE";
        let Some(targets) = msg.param(0) else {
            return plan.refuse(
                notice,
                ERR_NORECIPIENT,
                &[],
                &format!("No recipient given ({verb})"),
            );
        };
        let Some(text) = msg.param(1) else {
            return plan.refuse(notice, ERR_NOTEXTTOSEND, &[], "No text to send");
        };
        let said = names::said(text);
        let (text, action) = match said {
            Said::Plain(t) => (t, false),
            Said::Action(t) => (t, true),
            Said::Empty => return plan.refuse(notice, ERR_NOTEXTTOSEND, &[], "No text to send"),
            // A CTCP in a NOTICE is a CTCP reply, sent automatically: nothing answers it (RFC
            // 2812: no automatic reply to a NOTICE, from servers either), so two programs never
            // answer each other. A labeled one is acknowledged (`ACK`), as any line without
            // an answer.
            Said::Ctcp(_) if notice => return,
            Said::Ctcp(what) => {
                let me = plan.me.clone();
                return plan.line(
                    "NOTICE",
                    &[&me, &format!("natter does not carry CTCP {what}")],
                    true,
                );
            }
        };
        // IRCv3 message-tags: its client-only tags go with it (`+draft/reply`, `+draft/react`).
        let tags = msg.client_tags();
        let tags: Option<std::sync::Arc<str>> = (!tags.is_empty()).then(|| tags.into());
        let mut id = next_id;
        let mut text = Some(text);
        // Each target once (`#a,#A`, `bob,BOB` name one: channels and nicks are ASCII and
        // case-insensitive), as solanum drops duplicates: a line is one flood-control token,
        // and would otherwise say the same text to a room several times. One past the limit is
        // kept, for its `407`.
        let mut list: Vec<&str> = Vec::new();
        for t in targets.split(',').filter(|t| !t.is_empty()) {
            if !list.iter().any(|seen| seen.eq_ignore_ascii_case(t)) {
                list.push(t);
                if list.len() > IRC_MAX_TARGETS {
                    break;
                }
            }
        }
        // `PRIVMSG , :text`: commas but no target.
        if list.is_empty() {
            return plan.refuse(
                notice,
                ERR_NORECIPIENT,
                &[],
                &format!("No recipient given ({verb})"),
            );
        }
        let mut targets = list.into_iter().enumerate();
        let mut next = targets.next();
        while let Some((i, target)) = next {
            next = targets.next();
            // The last target takes the text itself; the others a copy.
            let Some(text) = (if next.is_none() {
                text.take()
            } else {
                text.clone()
            }) else {
                return;
            };
            if i == IRC_MAX_TARGETS {
                return plan.refuse(notice, ERR_TOOMANYTARGETS, &[target], "Too many recipients");
            }
            // A server mask (`$*`, `$natter.irc`): an admin's words to everyone on the server,
            // natter's `/wall` (IRC operators' global notice); anyone else gets 481.
            if target.starts_with('$') {
                plan.msg(ClientMsg::Admin(crate::wire::AdminAction::Wall(text)));
                continue;
            }
            if target.starts_with('#') {
                let Ok(room) = names::channel(target) else {
                    plan.refuse(notice, ERR_NOSUCHCHANNEL, &[target], "No such channel");
                    continue;
                };
                let m = if action {
                    ClientMsg::Act { room, id, text }
                } else if notice {
                    ClientMsg::Notice { room, id, text }
                } else {
                    ClientMsg::Say { room, id, text }
                };
                plan.said(m, tags.as_ref());
            } else {
                let Ok(to) = Nick::new(target) else {
                    plan.refuse(notice, ERR_NOSUCHNICK, &[target], "No such nick/channel");
                    continue;
                };
                // natter has no direct actions: the action goes as text `* me action`, which
                // IRC clients and natter's own are shown as an action (`DirectMsg::action`).
                let text = if action {
                    let act = crate::wire::DirectMsg::action_text(&plan.me, text.as_str());
                    Text::new(&act).unwrap_or(text)
                } else {
                    text
                };
                let m = if notice {
                    ClientMsg::NoticeTo {
                        to: to.clone(),
                        id,
                        text,
                    }
                } else {
                    ClientMsg::Msg {
                        to: to.clone(),
                        id,
                        text,
                    }
                };
                // A PRIVMSG to someone away is answered with 301 by the hub (as for every
                // dialect's direct message); a NOTICE is not.
                plan.said(m, tags.as_ref());
            }
            if let Some(r) = self.running.as_mut() {
                r.sent.push((id, target.to_owned()));
            }
            if self.recent.len() >= super::RECENT_SENT {
                self.recent.pop_front();
            }
            let command = if verb == "NOTICE" {
                "NOTICE"
            } else {
                "PRIVMSG"
            };
            let label = match self.running.as_ref().map(|r| &r.label) {
                Some(Label::Single(l))
                    if self.caps.has(super::caps::Cap::EchoMessage)
                        && l.len() <= crate::limits::IRC_MAX_KEPT_LABEL =>
                {
                    Some(l.clone())
                }
                _ => None,
            };
            self.recent.push_back(super::Sent {
                id,
                target: target.to_owned(),
                command,
                label,
            });
            id = MsgId(id.0 + 1);
        }
    }

    /// Whether a command's server `target` names a server other than this one, answered
    /// `402 ERR_NOSUCHSERVER` then, as servers answer `ADMIN`, `LINKS remote mask`,
    /// `STATS q server`, `TIME`, `MOTD` and `VERSION` for a server they do not know. This
    /// server's name or a mask it matches is this server; so is a nick (servers answer for the
    /// nick's server, and natter is a network of one server).
    fn no_such_server(&self, target: Option<&str>, plan: &mut Plan<'_>) -> bool {
        let Some(target) = target.and_then(|t| t.split(' ').next()) else {
            return false;
        };
        let server = self.server.as_str();
        let nick = !target.contains(['.', '*', '?']) && Nick::new(target).is_ok();
        if target.is_empty() || nick || wildcard_matches(target, server) {
            return false;
        }
        plan.num(ERR_NOSUCHSERVER, &[target], "No such server");
        true
    }

    fn mode(&mut self, msg: &Message<'_>, plan: &mut Plan<'_>) {
        let Some(target) = msg.param(0) else {
            return plan.need_more("MODE");
        };
        let me = plan.me.clone();
        if target.starts_with('#') {
            if let Err(bad) = names::channel(target) {
                return plan.num(bad.numeric, &[target], &bad.words);
            }
            let room = match names::channel(target) {
                Ok(room) => room,
                Err(bad) => return plan.num(bad.numeric, &[target], &bad.words),
            };
            let _ = me;
            return channel_modes(msg, room, plan);
        }
        if !target.eq_ignore_ascii_case(&me) {
            // Another user's modes: `502`, or `401` for a nick nobody has (the hub knows).
            let Ok(nick) = Nick::new(target) else {
                return plan.num(ERR_NOSUCHNICK, &[target], "No such nick/channel");
            };
            if let Some(r) = self.running.as_mut() {
                r.target = target.to_owned();
            }
            return plan.query(Query::Users(vec![nick]));
        }
        let Some(change) = msg.param(1) else {
            let modes: String = self.umodes.iter().collect();
            return plan.line(RPL_UMODEIS, &[&me, &format!("+{modes}")], false);
        };
        let mut on = true;
        let mut applied = String::new();
        let mut sign = None;
        let mut unknown = false;
        for c in change.chars() {
            match c {
                '+' => on = true,
                '-' => on = false,
                'i' | 'w' => {
                    let changed = if on {
                        self.umodes.insert(c)
                    } else {
                        self.umodes.remove(&c)
                    };
                    if changed {
                        if sign != Some(on) {
                            applied.push(if on { '+' } else { '-' });
                            sign = Some(on);
                        }
                        applied.push(c);
                    }
                }
                // `-o` gives up what OPER gave; `+o` is OPER's alone (ignored, as RFC 2812
                // says).
                'o' => {
                    if !on && self.umodes.remove(&'o') {
                        if sign != Some(on) {
                            applied.push('-');
                            sign = Some(on);
                        }
                        applied.push('o');
                        plan.request(Request::Deoper);
                    }
                }
                _ => unknown = true,
            }
        }
        if unknown {
            plan.num(ERR_UMODEUNKNOWNFLAG, &[], "Unknown MODE flag");
        }
        if let (false, Some(nick)) = (applied.is_empty(), &self.nick) {
            let source = names::source(nick);
            write_line(
                &mut plan.answer,
                &plan.tags,
                &source,
                "MODE",
                &[&me, &applied],
                true,
            );
        }
    }
}

/// What `SEARCH` says to words with nothing in them to search for.
const SEARCH_NOTHING: &str =
    "no results: those words are only formatting or invisible characters, nothing to search for";

/// Whether a `SEARCH` line has words after its room, whatever they hold.
fn search_typed(msg: &Message<'_>) -> bool {
    let first = msg.param(0).is_some_and(|p| p.starts_with('#'));
    (usize::from(first)..msg.params.len()).any(|i| msg.param(i).is_some_and(|p| !p.is_empty()))
}

/// `SEARCH [#room] words...`: the room (a first parameter starting with `#`) and the words (the
/// other parameters, side by side); `None` without words.
fn search(msg: &Message<'_>) -> Option<Result<(Option<RoomName>, Text), names::BadChannel>> {
    let params: Vec<&str> = (0..msg.params.len()).filter_map(|i| msg.param(i)).collect();
    let (room, rest) = match params.split_first() {
        Some((first, rest)) if first.starts_with('#') => (Some(*first), rest),
        _ => (None, &params[..]),
    };
    let room = match room.map(names::channel).transpose() {
        Ok(room) => room,
        Err(bad) => return Some(Err(bad)),
    };
    let joined = rest.join(" ");
    let words = names::plain(&joined);
    Text::new(words.trim()).ok().map(|words| Ok((room, words)))
}

/// `CHATHISTORY <sub> ...` (draft/chathistory): a window of a channel's lines, or the channels
/// with lines between two times. Malformed ones are `FAIL CHATHISTORY <code> <sub> ...`.
fn chathistory(msg: &Message<'_>, plan: &mut Plan<'_>) {
    use crate::hub::query::{Point, Window};
    let sub = msg
        .param(0)
        .map_or_else(|| "*".to_owned(), |s| shown(&s.to_ascii_uppercase()));
    let fail = |plan: &mut Plan<'_>, code: &str, more: &[&str], text: &str| {
        let mut params = vec!["CHATHISTORY", code, sub.as_str()];
        params.extend_from_slice(more);
        params.push(text);
        plan.line("FAIL", &params, true);
    };
    // Digits past what a usize holds ask for as many as there are, as a large limit does.
    let limit = |at: usize| {
        msg.param(at).and_then(|l| match l.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => Some(usize::MAX),
            Err(_) => None,
        })
    };
    let time = |at: usize| {
        msg.param(at)
            .and_then(|t| t.strip_prefix("timestamp="))
            .and_then(super::time::parse_iso)
    };
    if sub == "TARGETS" {
        let (Some(from), Some(to), Some(limit)) = (time(1), time(2), limit(3)) else {
            return fail(
                plan,
                "INVALID_PARAMS",
                &[],
                "TARGETS takes timestamp=<time> timestamp=<time> <limit>",
            );
        };
        return plan.query(Query::Targets { from, to, limit });
    }
    let points = match sub.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" => 1,
        "BETWEEN" => 2,
        "*" => return fail(plan, "INVALID_PARAMS", &[], "Not enough parameters"),
        _ => {
            return fail(
                plan,
                "UNKNOWN_COMMAND",
                &[],
                "Unknown CHATHISTORY subcommand",
            );
        }
    };
    let Some(target) = msg.param(1) else {
        return fail(plan, "INVALID_PARAMS", &[], "Not enough parameters");
    };
    // Echoed in a middle parameter: no spaces, and short.
    let named = shown(target);
    let target = named.as_str();
    if !target.starts_with('#') {
        return fail(
            plan,
            "INVALID_TARGET",
            &[target],
            "natter keeps no history of direct messages",
        );
    }
    let room = match names::channel(msg.param(1).unwrap_or_default()) {
        Ok(room) => room,
        Err(bad) => return fail(plan, "INVALID_TARGET", &[target], &bad.words),
    };
    // `msgid=lobby/42` (or `lobby/42.2`, a later part of a long line) or `timestamp=...`.
    let point = |at: usize| -> Option<Point> {
        let p = msg.param(at)?;
        if let Some(id) = p.strip_prefix("msgid=") {
            let (name, seq) = id.split_once('/')?;
            let seq = seq.split('.').next()?.parse::<u64>().ok()?;
            let ours = room.as_str().trim_start_matches('#');
            return name
                .eq_ignore_ascii_case(ours)
                .then_some(Point::Seq(crate::types::Seq(seq)));
        }
        time(at).map(Point::Time)
    };
    let window = match sub.as_str() {
        "LATEST" if msg.param(2) == Some("*") => Some(Window::Latest(None)),
        "LATEST" => point(2).map(|p| Window::Latest(Some(p))),
        "BEFORE" => point(2).map(Window::Before),
        "AFTER" => point(2).map(Window::After),
        "AROUND" => point(2).map(Window::Around),
        _ => point(2).zip(point(3)).map(|(a, b)| Window::Between(a, b)),
    };
    let (Some(window), Some(limit)) = (window, limit(2 + points)) else {
        return fail(
            plan,
            "INVALID_PARAMS",
            &[target],
            "Expected msgid=<id> or timestamp=<time> (or * for LATEST), then a limit; a msgid \
             names a message of this channel",
        );
    };
    plan.query(Query::History {
        room,
        window,
        limit,
    });
}

/// `TAGMSG target[,target]`: the line's client-only tags (`+typing=active`) relayed to the
/// channel's members or the nick, those with message-tags (IRCv3). Other tags are not carried;
/// a `TAGMSG` with no client-only tag has nothing to carry.
fn tagmsg(msg: &Message<'_>, plan: &mut Plan<'_>) {
    use crate::hub::relay::{Relay, RelayTo};
    let Some(targets) = msg.param(0) else {
        return plan.num(ERR_NORECIPIENT, &[], "No recipient given (TAGMSG)");
    };
    let tags = msg.client_tags();
    if tags.is_empty() {
        return;
    }
    let tags: std::sync::Arc<str> = tags.into();
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i == IRC_MAX_TARGETS {
            return plan.num(ERR_TOOMANYTARGETS, &[target], "Too many recipients");
        }
        let to = if target.starts_with('#') {
            match names::channel(target) {
                Ok(room) => RelayTo::Room(room),
                Err(bad) => {
                    plan.num(bad.numeric, &[target], &bad.words);
                    continue;
                }
            }
        } else {
            match Nick::new(target) {
                Ok(nick) => RelayTo::Nick(nick),
                Err(_) => {
                    plan.num(ERR_NOSUCHNICK, &[target], "No such nick/channel");
                    continue;
                }
            }
        };
        plan.request(Request::Relay(Relay {
            to,
            tags: tags.clone(),
        }));
    }
}

fn ping(msg: &Message<'_>, plan: &mut Plan<'_>) {
    match msg.param(0) {
        Some(token) => {
            let server = plan.server.clone();
            plan.line("PONG", &[server.as_str(), token], true);
        }
        None => plan.num(ERR_NOORIGIN, &[], "No origin specified"),
    }
}

fn topic(msg: &Message<'_>, plan: &mut Plan<'_>) {
    let Some(name) = msg.param(0) else {
        return plan.need_more("TOPIC");
    };
    let room = match names::channel(name) {
        Ok(room) => room,
        Err(bad) => return plan.num(bad.numeric, &[name], &bad.words),
    };
    match msg.params.get(1) {
        None => plan.msg(ClientMsg::Topic { room, topic: None }),
        // An empty topic (`TOPIC #room :`) clears it, as every IRC server does.
        Some(text) if text.trim().is_empty() => plan.msg(ClientMsg::ClearTopic { room }),
        // Cut to `TOPICLEN`, as `005` says.
        Some(text) => match Text::new(&names::topic(text)) {
            Ok(topic) => plan.msg(ClientMsg::Topic {
                room,
                topic: Some(topic),
            }),
            // Nothing left once formatting codes (or invisible characters) are taken out: it
            // was meant as a topic, not as clearing one, so it is refused as a PRIVMSG of only
            // codes is (`412`); until the thirty-first session it cleared the topic.
            Err(crate::types::InvalidName::EmptyText) => plan.line(
                "FAIL",
                &[
                    "TOPIC",
                    "INVALID_TEXT",
                    name,
                    &format!(
                        "Nothing is left of that topic without its formatting codes \
                         (TOPIC {room} : clears it)"
                    ),
                ],
                true,
            ),
            Err(e) => plan.line(
                "FAIL",
                &["TOPIC", "INVALID_TEXT", name, &e.to_string()],
                true,
            ),
        },
    }
}

/// What a channel mode letter natter knows is: the one list of them, read by `MODE`'s check
/// for a mask glued to its letter and by the loop that acts on each letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModeLetter {
    /// `o`, `v`: a member's prefix, with a nick.
    Member,
    /// `r`: `+r` registers the room (`-r` is unknown).
    Register,
    /// `b`, `q`: a list of masks (listed without one).
    List,
    /// `i m t k l n`: a setting (`k` and `l` with a value).
    Setting,
}

/// The kind of the channel mode letter `c`, if natter knows it.
fn mode_letter(c: char) -> Option<ModeLetter> {
    match c {
        'o' | 'v' => Some(ModeLetter::Member),
        'r' => Some(ModeLetter::Register),
        'b' | 'q' => Some(ModeLetter::List),
        'i' | 'm' | 't' | 'k' | 'l' | 'n' => Some(ModeLetter::Setting),
        _ => None,
    }
}

/// `MODE #room [changes [args...]]`: no changes asks for the settings; `+b`/`b` with no mask
/// lists the bans; every other letter is an operator's action (`o v b q i k m t l`).
fn channel_modes(msg: &Message<'_>, room: crate::types::RoomName, plan: &mut Plan<'_>) {
    use crate::moderation::ModeChange;
    use crate::wire::ModAction;
    let Some(changes) = msg.param(1) else {
        return plan.msg(ClientMsg::Moderate {
            room,
            action: ModAction::Settings,
        });
    };
    // irssi glues the mask of a list mode it does not know from CHANMODES to its letter
    // (`/mode #r +e *!*bob@natter` is `MODE #r +e*!*bob@natter`): a mode string holding what
    // is no mode letter is none, and acts on nothing (its `b`, `o`, `t` and `r` listed the
    // bans, were 461, set +t and registered the room), one `472` naming its first unknown
    // letter.
    // The letters known are `mode_letter`'s, as the loop below reads them.
    if changes
        .chars()
        .any(|c| !c.is_ascii_alphabetic() && c != '+' && c != '-')
    {
        let first = changes
            .chars()
            .find(|c| *c != '+' && *c != '-' && mode_letter(*c).is_none())
            .unwrap_or('*');
        return plan.num(
            ERR_UNKNOWNMODE,
            &[&first.to_string()],
            "is an unknown mode char to me",
        );
    }
    let mut args = msg.params.iter().skip(2).map(|a| a.as_ref());
    let mut on = true;
    let mut asked = 0;
    // One `472` per unknown letter and one `461` per line, as solanum and InspIRCd answer:
    // irssi's `/mode #r +e mask` got a line for each letter (and a line of repeated letters
    // as many as it held). At most `IRC_MAX_MODES` letters are named.
    let mut unknown: Vec<char> = Vec::new();
    let mut needed = false;
    for c in changes.chars() {
        let action = match (c, mode_letter(c)) {
            ('+', _) => {
                on = true;
                continue;
            }
            ('-', _) => {
                on = false;
                continue;
            }
            (_, Some(ModeLetter::Member)) => {
                let Some(nick) = args.next().and_then(|a: &str| Nick::new(a).ok()) else {
                    if !needed {
                        needed = true;
                        plan.need_more("MODE");
                    }
                    continue;
                };
                match (c, on) {
                    ('o', true) => ModAction::Op(nick),
                    ('o', false) => ModAction::Deop(nick),
                    ('v', true) => ModAction::Voice(nick),
                    _ => ModAction::Devoice(nick),
                }
            }
            // `+r` registers the room (CHANMODES lists it): the signed-in sender becomes its
            // founder, as `/register` does.
            (_, Some(ModeLetter::Register)) if on => ModAction::Register,
            (_, Some(ModeLetter::List)) => match (args.next(), c, on) {
                // A list mode with no mask lists (the mutes, for `q`: see `quiets_asked`).
                (None, _, _) => ModAction::Bans,
                (Some(mask), _, _) if Mask::parse(&irc_mask(mask)).is_err() => {
                    let why = if is_everyone(mask) {
                        EVERYONE.to_owned()
                    } else {
                        Mask::parse(&irc_mask(mask))
                            .err()
                            .map(|e| e.to_string())
                            .unwrap_or_default()
                    };
                    // A mask natter cannot read: `696 <channel> <mode char> <mask> :<why>`, as
                    // for any mode's bad parameter (not a `400` after the hub refused it).
                    let param = Some(mask)
                        .filter(|m| m.len() <= 64 && !m.starts_with(':'))
                        .unwrap_or("*");
                    let letter = c.to_string();
                    let params = [room.as_str(), letter.as_str(), param];
                    plan.num(ERR_INVALIDMODEPARAM, &params, &why);
                    continue;
                }
                (Some(mask), 'b', true) => ModAction::Ban {
                    target: irc_mask(mask),
                    duration: None,
                    reason: None,
                },
                (Some(mask), 'b', false) => ModAction::Unban {
                    target: irc_mask(mask),
                },
                (Some(mask), _, true) => ModAction::Mute {
                    target: irc_mask(mask),
                    duration: None,
                },
                (Some(mask), _, false) => ModAction::Unmute {
                    target: irc_mask(mask),
                },
            },
            (_, Some(ModeLetter::Setting)) => {
                let arg = match (c, on) {
                    ('k' | 'l', true) => args.next(),
                    ('k', false) => {
                        // A key given to -k is ignored, as IRC servers do.
                        let _ = args.next();
                        None
                    }
                    _ => None,
                };
                if c == 'n' {
                    // Always on: natter rooms take no messages from outside.
                    continue;
                }
                let flag = format!("{}{c}", if on { '+' } else { '-' });
                match ModeChange::parse(&flag, arg) {
                    Ok(change) => ModAction::Mode(change),
                    Err(words) => {
                        // `696 <channel> <mode char> <parameter> :<why>`.
                        let param = arg
                            .filter(|a| a.len() <= 64 && !a.contains(' ') && !a.starts_with(':'))
                            .filter(|a| !a.is_empty())
                            .unwrap_or("*");
                        let letter = c.to_string();
                        let params = [room.as_str(), letter.as_str(), param];
                        plan.num(ERR_INVALIDMODEPARAM, &params, &words);
                        continue;
                    }
                }
            }
            (other, _) => {
                if !unknown.contains(&other) && unknown.len() < IRC_MAX_MODES {
                    unknown.push(other);
                    plan.num(
                        ERR_UNKNOWNMODE,
                        &[&other.to_string()],
                        "is an unknown mode char to me",
                    );
                }
                continue;
            }
        };
        asked += 1;
        if asked > IRC_MAX_MODES {
            break;
        }
        plan.msg(ClientMsg::Moderate {
            room: room.clone(),
            action,
        });
    }
}

/// An IRC ban mask as natter reads it: `nick!*@*` is the nick, `*!*@host` the address, a bare
/// word a nick or natter's own mask. Every IRC user is `nick!nick@natter`, so the masks clients
/// make from that name the nick in the ident: `*!bob@natter` (WeeChat), `*!*bob@natter`
/// (irssi, HexChat's ban type 3), `*!*bob@*natter` (HexChat's type 2). One whose host could be
/// natter's and with no ident (`*!*@natter`, HexChat's default type 1) is everyone: refused, in
/// words that say so ([`EVERYONE`]).
fn irc_mask(mask: &str) -> String {
    match mask.split_once('!') {
        Some((nick, rest)) => {
            let (user, host) = rest.split_once('@').unwrap_or((rest, "*"));
            let user = user.trim_start_matches(['*', '~']);
            let ours = wildcard_matches(host, names::HOST);
            if nick != "*" && !nick.contains('*') {
                format!("nick:{nick}")
            } else if ours && !user.is_empty() && !user.contains(['*', '?']) {
                format!("nick:{user}")
            } else if ours {
                // Everyone on the pseudo-host: refused as a mask natter does not know.
                mask.to_owned()
            } else if host != "*" && !host.contains('*') {
                host.to_owned()
            } else {
                mask.to_owned()
            }
        }
        None => mask.to_owned(),
    }
}

/// Why a mask of everyone on natter's pseudo-host is refused (`696`'s words).
const EVERYONE: &str = "every natter user is nick!nick@natter, so that mask is everyone: ban \
                        the nick (+b bob, or *!bob@natter; in HexChat /ban bob 3)";

/// Whether `mask` is `*!IDENT@HOST` with no ident and a host that could be natter's
/// (`*!*@natter`, `*!*@*natter`, `*!*@*`).
fn is_everyone(mask: &str) -> bool {
    mask.split_once('!')
        .and_then(|(nick, rest)| Some((nick, rest.split_once('@')?)))
        .is_some_and(|(nick, (user, host))| {
            nick.chars().all(|c| c == '*')
                && user.chars().all(|c| matches!(c, '*' | '~'))
                && wildcard_matches(host, names::HOST)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irc_glob_matches_whole_text_case_insensitively() {
        for (p, t) in [
            ("natter", "natter"),
            ("NATTER", "natter"),
            ("*", "natter"),
            ("*natter", "natter"),
            ("n*r", "natter"),
            ("n?tter", "natter"),
            ("*t*", "natter"),
            ("**", ""),
        ] {
            assert!(wildcard_matches(p, t), "{p} should match {t}");
        }
        for (p, t) in [
            ("natte", "natter"),
            ("*.natter", "natter"),
            ("?natter", "natter"),
            ("n*x", "natter"),
            ("", "natter"),
        ] {
            assert!(!wildcard_matches(p, t), "{p} should not match {t}");
        }
    }

    #[test]
    fn the_masks_clients_make_from_a_nick_name_that_nick() {
        for (mask, read) in [
            ("*!bob@natter", "nick:bob"),   // WeeChat
            ("*!*bob@natter", "nick:bob"),  // irssi, HexChat's ban type 3
            ("*!*bob@*natter", "nick:bob"), // HexChat's ban type 2
            ("*!~bob@*", "nick:bob"),       // any host natter's could be
            ("bob!*@*", "nick:bob"),        // a nick mask
            ("*!*@10.1.2.3", "10.1.2.3"),   // an address
            ("bob", "bob"),                 // a bare word, read by `Mask::parse`
            ("*!*@natter", "*!*@natter"),   // everyone: refused
            ("*!*@*.example.com", "*!*@*.example.com"),
        ] {
            assert_eq!(irc_mask(mask), read, "{mask}");
        }
        for everyone in ["*!*@natter", "*!*@*natter", "*!*@*", "*!~*@NATTER"] {
            assert!(is_everyone(everyone), "{everyone}");
            assert!(Mask::parse(&irc_mask(everyone)).is_err(), "{everyone}");
        }
        for someone in ["*!bob@natter", "bob!*@*", "*!*@*.example.com", "bob"] {
            assert!(!is_everyone(someone), "{someone}");
        }
    }

    #[test]
    fn every_mask_as_irc_clients_are_shown_it_reads_back_as_itself() {
        for natter in [
            "nick:bob",
            "account:alice",
            "203.0.113.7",
            "203.0.113.0/24",
            "2001:db8::1",
            "2001:db8::/48",
        ] {
            let m = Mask::parse(natter).expect("a mask natter reads");
            let shown = names::mask(&m);
            assert!(!is_everyone(&shown), "{shown}");
            assert_eq!(
                Mask::parse(&irc_mask(&shown)),
                Ok(m),
                "{natter} shown as {shown}"
            );
        }
        let shown = |s: &str| names::mask(&Mask::parse(s).expect("a mask"));
        assert_eq!(shown("nick:bob"), "bob!*@*");
        assert_eq!(shown("203.0.113.7"), "*!*@203.0.113.7");
        assert_eq!(shown("203.0.113.0/24"), "*!*@203.0.113.0/24");
        assert_eq!(shown("account:alice"), "account:alice");
        assert_eq!(names::mode_change("+b nick:bob"), "+b bob!*@*");
        assert_eq!(names::mode_change("-q 10.0.0.0/8"), "-q *!*@10.0.0.0/8");
        assert_eq!(names::mode_change("+o bob"), "+o bob");
    }
}
