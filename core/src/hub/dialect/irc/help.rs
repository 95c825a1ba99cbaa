//! `HELP [command]` (ergo's and InspIRCd's, numerics `704`/`705`/`706` and `524` of the Modern
//! IRC client protocol document): the IRC commands natter takes, and a line for each.

/// Each command natter's IRC listener takes: its name, its parameters, what it does. In the
/// order [`index`] lists them.
pub(super) const COMMANDS: [(&str, &str, &str); 43] = [
    (
        "JOIN",
        "#channel[,#channel...] [key,...]",
        "join channels (JOIN 0: leave all of them)",
    ),
    ("PART", "#channel[,#channel...] [:reason]", "leave channels"),
    (
        "PRIVMSG",
        "target[,target...] :text",
        "say something to a channel or a nick",
    ),
    (
        "NOTICE",
        "target[,target...] :text",
        "a notice: nobody answers it automatically",
    ),
    (
        "TAGMSG",
        "target",
        "client tags alone (typing, reactions), with message-tags",
    ),
    (
        "TOPIC",
        "#channel [:topic]",
        "show a channel's topic, or set it (empty: clear it)",
    ),
    ("NAMES", "#channel[,#channel...]", "who is in channels"),
    (
        "WHO",
        "#channel | mask [o][%fields]",
        "who is in a channel or matches a mask (WHOX)",
    ),
    ("WHOIS", "nick", "about a user"),
    (
        "WHOWAS",
        "nick [count]",
        "about a user who left, or changed nick",
    ),
    (
        "LIST",
        "[#channel,...|>N|<N|mask|!mask]",
        "the channels, with member counts and topics",
    ),
    (
        "MODE",
        "target [modes [params...]]",
        "show or change a channel's modes (bqklimnrt), ops (o), voice (v), or your user modes",
    ),
    (
        "AWAY",
        "[:message]",
        "be away with a message; without one, not away",
    ),
    (
        "INVITE",
        "[nick #channel]",
        "invite someone to a channel; alone: your invitations",
    ),
    (
        "KICK",
        "#channel nick[,nick...] [:reason]",
        "put someone out of a channel (its operators)",
    ),
    ("NICK", "nick", "change your nick"),
    ("SETNAME", ":real name", "change your real name"),
    ("ISON", "nick [nick...]", "which of these nicks are online"),
    (
        "USERHOST",
        "nick [nick...]",
        "these users' hosts (at most 5)",
    ),
    (
        "MONITOR",
        "+ nicks | - nicks | C | L | S",
        "be told when nicks come and go",
    ),
    (
        "CHATHISTORY",
        "LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS ...",
        "a channel's or a conversation's earlier lines (IRCv3 chathistory)",
    ),
    (
        "SEARCH",
        "[#channel] words",
        "natter's own: find lines in a channel's history, answered as NOTICEs",
    ),
    ("MOTD", "", "the message of the day"),
    (
        "LUSERS",
        "",
        "how many users, channels and servers there are",
    ),
    ("TIME", "", "the server's time"),
    (
        "VERSION",
        "",
        "the server's version and what it supports (ISUPPORT)",
    ),
    ("INFO", "", "about this server"),
    (
        "ADMIN",
        "",
        "who runs this server (natter keeps no contact details)",
    ),
    (
        "LINKS",
        "[mask]",
        "the servers of the network: this one alone",
    ),
    (
        "STATS",
        "letter",
        "IRC's server statistics: natter keeps none",
    ),
    (
        "HELP",
        "[command]",
        "the commands, or one of them (HELPOP too)",
    ),
    ("PING", "token", "the server answers PONG token"),
    ("PONG", "token", "the answer to the server's PING"),
    ("QUIT", "[:reason]", "leave natter"),
    (
        "OPER",
        "account password",
        "a server admin's powers, with an admin account's password",
    ),
    ("KILL", "nick [:reason]", "server admins: disconnect a user"),
    (
        "TAKEOVER",
        "#channel",
        "server admins: become a channel's founder (natter's own; /quote TAKEOVER #channel)",
    ),
    (
        "CLOSE",
        "#channel [:reason]",
        "server admins: close a channel, everyone leaves (natter's own; /quote CLOSE #channel)",
    ),
    (
        "WALLOPS",
        ":text",
        "server admins: say something to users with user mode w",
    ),
    ("CAP", "LS|LIST|REQ|END ...", "IRCv3 capability negotiation"),
    (
        "AUTHENTICATE",
        "PLAIN | data",
        "SASL PLAIN sign-in to an account, before registering",
    ),
    (
        "PASS",
        "password",
        "taken before registering, and ignored (sign in with SASL)",
    ),
    (
        "USER",
        "user 0 * :real name",
        "register the connection, with NICK",
    ),
];

/// The answer's lines for `HELP` alone: a first line, the commands a few to a line, a last
/// line (`704`, `705`s, `706`).
pub(super) fn index() -> Vec<String> {
    let mut lines = vec!["natter's IRC commands (HELP <command> for one of them):".to_owned()];
    let names: Vec<&str> = COMMANDS.iter().map(|(name, _, _)| *name).collect();
    lines.extend(names.chunks(8).map(|c| c.join(" ")));
    lines.push("End of /HELP".to_owned());
    lines
}

/// The answer's lines for `HELP command` (any case, a leading `/` allowed): its parameters,
/// what it does, a last line; `None` for a command natter does not take.
pub(super) fn about(subject: &str) -> Option<Vec<String>> {
    let name = subject.strip_prefix('/').unwrap_or(subject);
    let (name, params, what) = COMMANDS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))?;
    Some(vec![
        format!("{name} {params}").trim_end().to_owned(),
        (*what).to_owned(),
        "End of /HELP".to_owned(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_taken_has_help_and_every_help_is_a_command_taken() {
        for known in super::super::read::KNOWN {
            if known == "HELPOP" {
                continue;
            }
            assert!(about(known).is_some(), "{known} has no HELP");
        }
        for (name, _, what) in COMMANDS {
            assert!(
                super::super::read::KNOWN.contains(&name),
                "{name} is not taken"
            );
            assert!(!what.is_empty());
        }
        let index = index().join(" ");
        for (name, _, _) in COMMANDS {
            assert!(index.split(' ').any(|w| w == name), "{name} not listed");
        }
        assert_eq!(about("/join").unwrap()[0], about("JOIN").unwrap()[0]);
        assert_eq!(about("motd").unwrap()[0], "MOTD");
        assert!(about("FROB").is_none() && about("").is_none());
    }
}
