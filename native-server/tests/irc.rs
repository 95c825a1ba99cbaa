//! The IRC listener over real sockets on 127.0.0.1: a scripted raw IRC client gets the numeric
//! for each kind of bad input, and chats with an nc user; ERROR comes before every close; and
//! CHATHISTORY reads what was said before a restart of a server with a data directory; MONITOR
//! tells of a watched nick; a JOIN and a line in one write come back in order; natter's own quit
//! reasons read in IRC's words.

mod support;

use natter_server::{Server, ServerConfig, start};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

async fn server() -> (Server, SocketAddr, SocketAddr) {
    server_of(ServerConfig::local_test()).await
}

/// [`server`] with a patient detection wait, for tests with binary clients (their nc users
/// press Enter).
async fn patient_server() -> (Server, SocketAddr, SocketAddr) {
    server_of(ServerConfig::local_test_patient()).await
}

async fn server_of(mut config: ServerConfig) -> (Server, SocketAddr, SocketAddr) {
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    let server = start(config).await.unwrap();
    let natter = server.local_addrs()[0];
    let irc = server.irc_addrs()[0];
    (server, natter, irc)
}

/// The numeric of a server line, if it is one.
fn numeric(line: &str) -> Option<&str> {
    let mut words = line.split(' ');
    (words.next()? == ":natter.irc").then_some(())?;
    words
        .next()
        .filter(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit()))
}

/// Sends `line` and waits for the numeric `want` in answer; returns its line.
async fn expect_numeric(c: &mut TextClient, line: &[u8], want: &str) -> String {
    c.send_raw(line).await;
    let what = format!("numeric {want} for {:?}", String::from_utf8_lossy(line));
    c.expect(|l| numeric(l) == Some(want), &what).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_numeric_and_error_comes_before_the_close() {
    let (server, natter, irc) = server().await;
    // Someone holds the nick "taken" (a person on nc who renamed).
    let (mut nc, _) = TextClient::welcomed(natter, "nc").await;
    nc.send("/nick taken").await;
    nc.expect_has("you are now known as taken").await;

    let mut c = TextClient::connect(irc, "raw").await;
    expect_numeric(&mut c, b"JOIN #early\r\n", "451").await;
    expect_numeric(&mut c, b"NICK 9lives\r\n", "432").await;
    expect_numeric(&mut c, b"NICK\r\n", "431").await;
    let l = expect_numeric(&mut c, b"NICK taken\r\nUSER raw 0 * :Raw\r\n", "433").await;
    assert_eq!(l, ":natter.irc 433 * taken :Nickname is already in use");
    let l = expect_numeric(&mut c, b"NICK raw\r\n", "001").await;
    assert!(l.starts_with(":natter.irc 001 raw :Welcome"), "{l}");
    c.expect(|l| numeric(l) == Some("376"), "the end of the MOTD")
        .await;

    expect_numeric(&mut c, b"FROB\r\n", "421").await;
    expect_numeric(&mut c, b"PRIVMSG\r\n", "411").await;
    expect_numeric(&mut c, b"PRIVMSG #lobby\r\n", "412").await;
    expect_numeric(&mut c, b"JOIN\r\n", "461").await;
    expect_numeric(&mut c, b"PRIVMSG nobody :hello?\r\n", "401").await;
    expect_numeric(&mut c, b"PRIVMSG #lobby :not in it\r\n", "404").await;
    expect_numeric(&mut c, b"JOIN #c++\r\n", "479").await;
    expect_numeric(&mut c, b"PART #lobby\r\n", "442").await;
    // Flood control: one token per line; give it time to refill.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let long = format!("PRIVMSG #lobby :{}\r\n", "x".repeat(1000));
    expect_numeric(&mut c, long.as_bytes(), "417").await;
    // Tag data over 4094 bytes (IRCv3 message-tags), in a line short enough otherwise.
    let tagged = format!("@+typing={} TAGMSG #lobby\r\n", "a".repeat(4090));
    expect_numeric(&mut c, tagged.as_bytes(), "417").await;
    // Junk bytes: a line of control characters is an unknown command; still connected.
    let l = expect_numeric(&mut c, b"\x00\x01\x7f junk\r\n", "421").await;
    assert_eq!(l, ":natter.irc 421 raw * :Unknown command");
    c.send_raw(b"PRIVMSG #lobby :caf\xe9\r\n").await;
    c.expect(
        |l| l == ":natter.irc FAIL PRIVMSG INVALID_UTF8 :Message rejected: natter takes UTF-8 only",
        "FAIL INVALID_UTF8",
    )
    .await;

    // Still a working client: it talks to the nc user.
    c.send("JOIN #lobby").await;
    c.expect_has(" 366 raw #lobby ").await;
    nc.expect_has("-- raw joined #lobby").await;
    c.send("PRIVMSG #lobby :hello nc").await;
    nc.expect(|l| l == "<raw> hello nc", "the IRC line").await;
    nc.send("hello irc").await;
    c.expect(
        |l| l == ":taken!taken@natter PRIVMSG #lobby :hello irc",
        "the nc line",
    )
    .await;

    c.send("QUIT :done").await;
    let last = c.expect_closed().await;
    assert_eq!(
        last.last().map(String::as_str),
        Some("ERROR :Closing Link: natter (Quit: done)"),
        "{last:?}"
    );
    nc.expect(|l| l == "-- raw quit (done)", "the quit").await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_a_web_page_posts_to_the_irc_port_says_nothing() {
    // A page's form posted to the IRC port by a visitor's browser: its body's lines registered a
    // nick and said the page's words in the channel.
    let (server, natter, irc) = server().await;
    let (mut nc, _) = TextClient::welcomed(natter, "nc").await;
    nc.expect_has("you are in #lobby").await;
    let body = "NICK spammer\r\nUSER s 0 * :s\r\nJOIN #lobby\r\nPRIVMSG #lobby :buy now\r\n";
    let post = format!(
        "POST / HTTP/1.1\r\nHost: {irc}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = TextClient::connect(irc, "browser").await;
    c.send_raw(post.as_bytes()).await;
    let got = c.expect_closed().await;
    assert_eq!(
        got,
        ["ERROR :Closing Link: natter (this port speaks IRC, not HTTP)"]
    );
    let heard = nc.lines_for(Duration::from_millis(500)).await;
    assert!(heard.is_empty(), "{heard:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_hello_timeout_end_with_error() {
    let mut config = ServerConfig::local_test();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.hub.hello_timeout = natter_core::Millis(1_000);
    let server = start(config).await.unwrap();
    let irc = server.irc_addrs()[0];
    let mut slow = TextClient::connect(irc, "slow").await;
    slow.send("NICK slow").await;
    let got = slow.expect_closed().await;
    assert_eq!(
        got,
        ["ERROR :Closing Link: natter (Registration timed out: no NICK and USER within 1 second)"]
    );

    let mut c = TextClient::connect(irc, "c").await;
    c.send("NICK c\r\nUSER c 0 * :c").await;
    c.expect(|l| numeric(l) == Some("376"), "registration")
        .await;
    server.shutdown().await.unwrap();
    let got = c.expect_closed().await;
    assert_eq!(
        got.last().map(String::as_str),
        Some("ERROR :Closing Link: natter (server shutting down)")
    );
}

/// An IRC client registered as `nick`, with `caps` (none: no CAP negotiation).
async fn irc_client(addr: SocketAddr, nick: &str, caps: &str) -> TextClient {
    let mut c = TextClient::connect(addr, nick).await;
    if !caps.is_empty() {
        c.send(&format!("CAP LS 302\r\nCAP REQ :{caps}")).await;
        c.expect_has(" ACK ").await;
    }
    c.send(&format!(
        "NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP END"
    ))
    .await;
    c.expect(|l| numeric(l) == Some("376"), "registration")
        .await;
    c
}

/// A typing notification (`TAGMSG` with `+typing`) reaches a member with message-tags as its
/// `TAGMSG`; a member without the capability gets none (its next line is the message after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagmsg_reaches_members_with_message_tags_only() {
    let (server, _, irc) = server().await;
    let mut typer = irc_client(irc, "typer", "message-tags").await;
    let mut seer = irc_client(irc, "seer", "message-tags").await;
    let mut plain = irc_client(irc, "plain", "").await;
    for (c, nick) in [
        (&mut typer, "typer"),
        (&mut seer, "seer"),
        (&mut plain, "plain"),
    ] {
        c.send("JOIN #t").await;
        c.expect_has(&format!(" 366 {nick} #t ")).await;
    }
    typer.send("@+typing=active TAGMSG #t").await;
    typer.send("PRIVMSG #t :done typing").await;
    // With its msgid (`~<from>/<time>/<n>`), as a PRIVMSG has one.
    seer.expect(
        |l| {
            l.starts_with("@+typing=active;msgid=~typer/")
                && l.ends_with(" :typer!typer@natter TAGMSG #t")
        },
        "the TAGMSG",
    )
    .await;
    let next = plain
        .expect(|l| l.contains("typer"), "typer's next line")
        .await;
    assert_eq!(next, ":typer!typer@natter PRIVMSG #t :done typing");
    server.shutdown().await.unwrap();
}

/// A `PRIVMSG`'s client-only tags (`+draft/reply`) reach a member with message-tags and come
/// back in the sender's echo, the same msgid on both; a member without the capability and a
/// person on nc get the text alone; other tags stay behind. A direct message's too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privmsgs_client_only_tags_reach_members_with_message_tags_only() {
    let (server, natter, irc) = server().await;
    let mut alice = irc_client(irc, "alice", "message-tags echo-message").await;
    let mut bob = irc_client(irc, "bob", "message-tags").await;
    let mut carol = irc_client(irc, "carol", "").await;
    for (c, nick) in [
        (&mut alice, "alice"),
        (&mut bob, "bob"),
        (&mut carol, "carol"),
    ] {
        c.send("JOIN #lobby").await;
        c.expect_has(&format!(" 366 {nick} #lobby ")).await;
    }
    let (mut nc, _) = TextClient::welcomed(natter, "nc").await;
    alice
        .send("@+draft/reply=lobby/1;fizz=buzz PRIVMSG #lobby :replying")
        .await;
    let said = " :alice!alice@natter PRIVMSG #lobby :replying";
    let tagged = |l: &str| l.starts_with("@+draft/reply=lobby/1;msgid=") && l.ends_with(said);
    let echo = alice.expect(|l| l.ends_with(said), "the echo").await;
    let relay = bob.expect(|l| l.ends_with(said), "the relay").await;
    assert!(tagged(&echo) && tagged(&relay), "{echo} / {relay}");
    assert_eq!(
        echo.split_once(' ').unwrap().0,
        relay.split_once(' ').unwrap().0
    );
    assert!(!relay.contains("fizz"), "{relay}");
    let plain = carol.expect(|l| l.contains("replying"), "the line").await;
    assert_eq!(plain, said.trim_start());
    nc.expect(|l| l == "<alice> replying", "the text").await;
    // A direct message: to a nick with message-tags, its tags; to one without, none.
    alice.send("@+draft/reply=x PRIVMSG bob :psst").await;
    alice.send("@+draft/reply=x PRIVMSG carol :psst").await;
    let l = bob.expect(|l| l.contains("psst"), "the DM").await;
    assert!(
        l.starts_with("@+draft/reply=x;msgid=@alice/")
            && l.ends_with(" :alice!alice@natter PRIVMSG bob :psst"),
        "{l}"
    );
    let l = carol.expect(|l| l.contains("psst"), "the DM").await;
    assert_eq!(l, ":alice!alice@natter PRIVMSG carol :psst");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chathistory_latest_reads_what_was_said_before_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, natter, irc) = durable_irc_server(dir.path()).await;
    let (mut nc, nc_nick) = TextClient::welcomed(natter, "nc").await;
    let mut talker = irc_client(irc, "talker", "").await;
    talker.send("JOIN #lobby").await;
    talker.expect_has(" 366 talker #lobby ").await;
    for i in 1..=3 {
        talker.send(&format!("PRIVMSG #lobby :kept line {i}")).await;
        // Delivered means committed: a durable server delivers only what the store holds.
        let want = format!("<talker> kept line {i}");
        nc.expect(|l| l == want, "the IRC line").await;
    }
    nc.send("and one from nc").await;
    talker.expect_has(" PRIVMSG #lobby :and one from nc").await;
    let status = sigterm(&mut first).await;
    assert_eq!(status.code(), Some(0), "{status:?}");

    let (mut second, _, irc) = durable_irc_server(dir.path()).await;
    let mut reader = irc_client(
        irc,
        "reader",
        "draft/chathistory batch server-time message-tags",
    )
    .await;
    reader.send("JOIN #lobby").await;
    reader.expect_has(" 366 reader #lobby ").await;
    reader.send("CHATHISTORY LATEST #lobby * 10").await;
    let open = reader.expect_has(" BATCH +").await;
    let id = open
        .strip_prefix(":natter.irc BATCH +")
        .and_then(|r| r.strip_suffix(" chathistory #lobby"))
        .unwrap_or_else(|| panic!("{open}"))
        .to_owned();
    let mut said = Vec::new();
    loop {
        let l = reader.expect(|_| true, "the history batch").await;
        if l == format!(":natter.irc BATCH -{id}") {
            break;
        }
        assert!(l.starts_with(&format!("@batch={id};time=")), "{l}");
        assert!(l.contains(";msgid=lobby/"), "{l}");
        said.push(l.split_once(" PRIVMSG #lobby :").map(|(who, t)| {
            let who = who.rsplit_once(" :").map_or(who, |(_, w)| w);
            (
                who.split('!').next().unwrap_or_default().to_owned(),
                t.to_owned(),
            )
        }));
    }
    let said: Vec<(String, String)> = said.into_iter().flatten().collect();
    let want: Vec<(String, String)> = (1..=3)
        .map(|i| ("talker".to_owned(), format!("kept line {i}")))
        .chain([(nc_nick.clone(), "and one from nc".to_owned())])
        .collect();
    assert_eq!(said, want);
    let status = sigterm(&mut second).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// Away over real sockets, one hub state for every door: a natter client (protocol 8) goes
/// away, and an IRC client with away-notify sees `AWAY`, `301` in WHOIS and `G` in WHO, and
/// gets `301` for a PRIVMSG; an nc user's direct message to it is answered in words; its return
/// is seen by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_natter_client_going_away_is_seen_by_irc_and_nc() {
    use natter_core::wire::{ClientMsg, ServerMsg};
    let (server, natter, irc) = patient_server().await;
    let (mut bin, _) = BinClient::hello(natter, "natty", None).await;
    bin.join("#lobby").await;
    let (mut nc, nc_nick) = TextClient::entered(natter, "nc").await;
    let mut c = TextClient::connect(irc, "ircy").await;
    c.send("CAP LS 302\r\nNICK ircy\r\nUSER i 0 * :I\r\nCAP REQ :away-notify\r\nCAP END")
        .await;
    c.expect(|l| numeric(l) == Some("376"), "registration")
        .await;
    c.send("JOIN #lobby").await;
    c.expect_has(" 366 ircy #lobby ").await;

    bin.send(&ClientMsg::Away(Some(text("at lunch")))).await;
    bin.expect(
        |m| matches!(m, ServerMsg::Away { nick: n, away: Some(a) } if n.as_str() == "natty" && a.as_str() == "at lunch"),
        "its own away, confirmed",
    )
    .await;
    c.expect(|l| l == ":natty!natty@natter AWAY :at lunch", "away-notify")
        .await;
    nc.expect(|l| l == "-- natty is away: at lunch", "the away, in words")
        .await;

    c.send("WHOIS natty").await;
    let l = c
        .expect(|l| numeric(l) == Some("301"), "301 in WHOIS")
        .await;
    assert_eq!(l, ":natter.irc 301 ircy natty :at lunch");
    c.send("WHO #lobby").await;
    let l = c.expect_has(" 352 ircy #lobby natty ").await;
    assert!(l.contains(" G :0"), "{l}");
    c.send("PRIVMSG natty :there?").await;
    c.expect(
        |l| l == ":natter.irc 301 ircy natty :at lunch",
        "301 for a PRIVMSG",
    )
    .await;
    nc.send("/msg natty you there?").await;
    nc.expect(|l| l == "-- natty is away: at lunch", "the away, for a DM")
        .await;

    // nc goes away too; the natter client hears it, and its DM is answered with it.
    nc.send("/away brb").await;
    nc.expect(|l| l.starts_with("-- you are away: brb"), "nc's own away")
        .await;
    let nc_is = nick(&nc_nick);
    bin.expect(
        |m| matches!(m, ServerMsg::Away { nick: n, away: Some(_) } if *n == nc_is),
        "nc's away",
    )
    .await;
    let id = bin.id();
    bin.send(&ClientMsg::Msg {
        to: nick(&nc_nick),
        id,
        text: text("ping"),
    })
    .await;
    bin.expect(
        |m| matches!(m, ServerMsg::Away { nick: n, away: Some(a) } if *n == nc_is && a.as_str() == "brb"),
        "the away reply to a DM",
    )
    .await;

    bin.send(&ClientMsg::Away(None)).await;
    c.expect(|l| l == ":natty!natty@natter AWAY", "back, away-notify")
        .await;
    nc.expect(|l| l == "-- natty is back", "back, in words")
        .await;
    server.shutdown().await.unwrap();
}

/// Someone already away joining a room, over real sockets: an nc user in it reads the join
/// and then the away line, an IRC client with away-notify the `JOIN` and then `AWAY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_away_joiner_is_said_away_to_nc_and_irc() {
    use natter_core::wire::{ClientMsg, ServerMsg};
    let (server, natter, irc) = patient_server().await;
    let (mut nc, _) = TextClient::entered(natter, "nc").await;
    nc.send("/join #den").await;
    nc.expect(|l| l.starts_with("-- you are in #den"), "nc in #den")
        .await;
    let mut c = TextClient::connect(irc, "ircy").await;
    c.send("CAP LS 302\r\nNICK ircy\r\nUSER i 0 * :I\r\nCAP REQ :away-notify\r\nCAP END")
        .await;
    c.expect(|l| numeric(l) == Some("376"), "registration")
        .await;
    c.send("JOIN #den").await;
    c.expect_has(" 366 ircy #den ").await;
    let (mut bin, _) = BinClient::hello(natter, "natty", None).await;
    bin.send(&ClientMsg::Away(Some(text("at lunch")))).await;
    bin.expect(
        |m| matches!(m, ServerMsg::Away { away: Some(_), .. }),
        "its own away, confirmed",
    )
    .await;

    bin.join("#den").await;
    nc.expect(|l| l == "-- natty joined #den", "the join").await;
    let next = nc.expect(|_| true, "the line after the join").await;
    assert_eq!(next, "-- natty is away: at lunch");
    c.expect(
        |l| l.starts_with(":natty!") && l.ends_with(" JOIN #den"),
        "JOIN",
    )
    .await;
    let next = c.expect(|_| true, "the line after the JOIN").await;
    assert_eq!(next, ":natty!natty@natter AWAY :at lunch");
    server.shutdown().await.unwrap();
}

/// A natter client that drops and does not resume in time quits with natter's own words, read
/// on each door as its users expect: `QUIT :Connection lost`, capitalised as IRC servers word
/// their quits, to an IRC client; `-- natty quit (connection lost)` to an nc user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_natter_clients_quit_reads_as_each_door_words_it() {
    let mut config = ServerConfig::local_test_patient();
    config.hub.resume_grace = natter_core::Millis(1_000);
    let (server, natter, irc) = server_of(config).await;
    let (mut nc, _) = TextClient::entered(natter, "nc").await;
    nc.send("/join #den").await;
    nc.expect(|l| l.starts_with("-- you are in #den"), "nc in #den")
        .await;
    let mut c = TextClient::connect(irc, "ircy").await;
    c.send("NICK ircy\r\nUSER i 0 * :I").await;
    c.expect(|l| numeric(l) == Some("376"), "registration")
        .await;
    c.send("JOIN #den").await;
    c.expect_has(" 366 ircy #den ").await;
    let (mut bin, _) = BinClient::hello(natter, "natty", None).await;
    bin.join("#den").await;
    nc.expect(|l| l == "-- natty joined #den", "the join").await;
    c.expect(|l| l.ends_with(" JOIN #den"), "JOIN").await;
    // Its socket closes without a `Quit`: the session waits for a resume, then ends.
    drop(bin);
    let quit = c.expect(|l| l.contains(" QUIT "), "the QUIT").await;
    assert_eq!(quit, ":natty!natty@natter QUIT :Connection lost");
    nc.expect(|l| l == "-- natty quit (connection lost)", "the quit")
        .await;
    server.shutdown().await.unwrap();
}

/// WHO and WHOIS show an IRC user's `USER` name (after `~`) and real name; WHO with a mask
/// finds it by its real name; WHOWAS remembers it after its QUIT; every line comes from the
/// configured server name (`[irc] server_name`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_whois_and_whowas_show_the_user_name_and_real_name() {
    let mut config = ServerConfig::local_test();
    config.irc_listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.hub.irc_server_name = natter_core::hub::ServerName::new("My.Little.Server").unwrap();
    let server = start(config).await.unwrap();
    let irc = server.irc_addrs()[0];
    let mut cool = TextClient::connect(irc, "cool").await;
    cool.send("NICK coolNick\r\nUSER myusernam 0 * :My UniqueReal Name")
        .await;
    cool.expect_has(" 376 coolNick ").await;
    let mut other = TextClient::connect(irc, "other").await;
    other.send("NICK other\r\nUSER o 0 * :Other").await;
    other.expect_has(" 376 other ").await;

    other.send("WHOIS coolnick").await;
    let line = other.expect_has(" 311 other ").await;
    assert_eq!(
        line,
        ":My.Little.Server 311 other coolNick coolNick natter * :My UniqueReal Name"
    );
    other.send("WHO *uniquereal*").await;
    let line = other.expect_has(" 352 other ").await;
    assert_eq!(
        line,
        ":My.Little.Server 352 other * coolNick natter My.Little.Server coolNick H :0 My \
         UniqueReal Name"
    );
    other.expect_has(" 315 other *uniquereal* ").await;

    cool.send("QUIT :bye").await;
    cool.expect_has("ERROR").await;
    other.send("WHOWAS coolNick").await;
    let line = other.expect_has(" 314 other ").await;
    assert_eq!(
        line,
        ":My.Little.Server 314 other coolNick coolNick natter * :My UniqueReal Name"
    );
    other
        .expect_has(" 312 other coolNick My.Little.Server ")
        .await;
    other.expect_has(" 369 other coolNick ").await;
    server.shutdown().await.unwrap();
}

/// IRC's `MONITOR` over sockets: an IRC user watching a nick hears when an nc user takes it
/// and when that connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_tells_an_irc_user_when_a_watched_nick_comes_and_goes() {
    let (server, natter, irc) = server().await;
    let mut w = irc_client(irc, "watcher", "").await;
    w.send("MONITOR + ghostly").await;
    let l = w.expect(|l| numeric(l) == Some("731"), "731").await;
    assert_eq!(l, ":natter.irc 731 watcher :ghostly");
    let (mut nc, _) = TextClient::welcomed(natter, "nc").await;
    nc.send("/nick ghostly").await;
    let l = w.expect(|l| numeric(l) == Some("730"), "730").await;
    assert_eq!(l, ":natter.irc 730 watcher :ghostly!ghostly@natter");
    drop(nc);
    let l = w.expect(|l| numeric(l) == Some("731"), "731 again").await;
    assert_eq!(l, ":natter.irc 731 watcher :ghostly");
    server.shutdown().await.unwrap();
}

/// IRCv3 `setname` and `extended-monitor` over sockets: a `SETNAME` comes back to its sender
/// and to a co-member with `setname`, and reaches a watcher sharing no channel with
/// `extended-monitor` (its `AWAY` too, with away-notify); `WHOIS` then shows the new name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setname_reaches_co_members_and_extended_monitor_watchers() {
    let (server, _, irc) = server().await;
    let mut amy = irc_client(irc, "amy", "setname").await;
    let mut seer = irc_client(irc, "seer", "setname").await;
    let mut far = irc_client(irc, "far", "setname extended-monitor away-notify").await;
    for (c, nick) in [(&mut amy, "amy"), (&mut seer, "seer")] {
        c.send("JOIN #s").await;
        c.expect_has(&format!(" 366 {nick} #s ")).await;
    }
    far.send("MONITOR + amy").await;
    far.expect(|l| numeric(l) == Some("730"), "730").await;
    amy.send("SETNAME :Amy Q. Person").await;
    let line = ":amy!amy@natter SETNAME :Amy Q. Person";
    assert_eq!(amy.expect_has(" SETNAME ").await, line);
    assert_eq!(seer.expect_has(" SETNAME ").await, line);
    assert_eq!(far.expect_has(" SETNAME ").await, line);
    amy.send("AWAY :brb").await;
    assert_eq!(far.expect_has(" AWAY ").await, ":amy!amy@natter AWAY :brb");
    seer.send("WHOIS amy").await;
    let l = seer.expect(|l| numeric(l) == Some("311"), "311").await;
    assert!(l.ends_with(" * :Amy Q. Person"), "{l}");
    amy.send("SETNAME :").await;
    let l = amy.expect_has("FAIL").await;
    assert_eq!(
        l,
        ":natter.irc FAIL SETNAME INVALID_REALNAME :Realname is not valid"
    );
    server.shutdown().await.unwrap();
}

/// An IRC client signed in to `alice` (password "correct horse") with SASL PLAIN and `caps`,
/// registered; the lines of its welcome up to the MOTD's end.
async fn sasl_alice(irc: SocketAddr, caps: &str) -> (TextClient, Vec<String>) {
    let mut c = TextClient::connect(irc, "sasl alice").await;
    c.send(&format!(
        "CAP LS 302\r\nCAP REQ :sasl {caps}\r\nNICK alice\r\nUSER a 0 * :A\r\nAUTHENTICATE PLAIN"
    ))
    .await;
    c.expect_has("AUTHENTICATE +").await;
    // "\0alice\0correct horse"
    c.send("AUTHENTICATE AGFsaWNlAGNvcnJlY3QgaG9yc2U=").await;
    c.expect(|l| numeric(l) == Some("903"), "SASL success")
        .await;
    let from = c.seen.len();
    c.send("CAP END").await;
    c.expect(|l| numeric(l) == Some("376"), "registration")
        .await;
    let welcome = c.seen[from..].to_vec();
    (c, welcome)
}

/// What an account missed past what a room keeps in memory (256 events) is read from the
/// store after its SASL welcome: every line comes, as history (timed), and no notice says
/// lines were not delivered (IRC rendered none of the store's events, and each was told as a
/// line lost to reading too slowly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_account_missed_past_the_ring_comes_from_the_store_with_its_sasl_welcome() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, natter, irc) = patient_durable_irc_server(dir.path()).await;
    let mut owner = BinClient::registered(natter, "alice", "correct horse").await;
    owner.join("#big").await;
    drop(owner);
    // An IRC session reads the room up to its quit: the account's read marker.
    let caps = "server-time batch message-tags";
    let (mut first, _) = sasl_alice(irc, caps).await;
    // After the MOTD, the account's rooms.
    first
        .expect(
            // With server-time, its own JOIN is timed as everyone's.
            |l| l.starts_with("@time=") && l.ends_with(" :alice!alice@natter JOIN #big"),
            "the account's room",
        )
        .await;
    first.send("QUIT :later").await;
    first.expect_closed().await;
    // 270 lines, more than the ring holds, from 6 talkers at flood control's pace.
    let mut talkers = Vec::new();
    for i in 0..6 {
        let (mut t, _) = BinClient::hello(natter, &format!("talker{i}"), None).await;
        t.join("#big").await;
        talkers.push(t);
    }
    for round in 0..45 {
        for (i, t) in talkers.iter_mut().enumerate() {
            t.say("#big", &format!("line {}", round * 6 + i + 1)).await;
        }
        tokio::time::sleep(Duration::from_millis(210)).await;
    }
    use natter_core::wire::{EventKind, ServerMsg};
    // Every line is in once the last talker has the last of its own.
    let mut last = talkers.pop().unwrap();
    last.expect(
        |m| matches!(m, ServerMsg::Event(e) if matches!(&e.kind, EventKind::Say { text, .. } if text.as_str() == "line 270")),
        "the last line",
    )
    .await;
    let (mut back, mut lines) = sasl_alice(irc, caps).await;
    let mut said = Vec::new();
    loop {
        let l = match lines.first() {
            Some(_) => lines.remove(0),
            None => back.expect(|_| true, "the lines missed").await,
        };
        assert!(!l.contains("not delivered"), "{l}");
        if let Some((tags, text)) = l.split_once(" PRIVMSG #big :") {
            assert!(tags.starts_with("@") && tags.contains("time="), "{l}");
            said.push(text.to_owned());
            if said.len() == 270 {
                break;
            }
        }
    }
    // In the order the server took them (six connections at once), each once.
    let mut numbers: Vec<u32> = said
        .iter()
        .map(|t| {
            t.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=270).collect::<Vec<u32>>());
    drop(talkers);
    let status = sigterm(&mut server).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// QA saw, in irssi against a server with a store, a line typed right after `/join #room`
/// above its JOIN. The server's order is right (irssi prints its own lines itself, asking no
/// echo-message, in the window it opens at `/join`): JOIN and PRIVMSG in one write come back
/// to the sender as its JOIN, the names, the history batch, then the echo; another member sees
/// the JOIN before the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_and_a_line_in_one_write_come_back_in_order_from_a_stored_server() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _, irc) = durable_irc_server(dir.path()).await;
    let mut talker = irc_client(irc, "talker", "echo-message").await;
    talker.send("JOIN #room").await;
    talker.expect_has(" 366 talker #room ").await;
    for i in 1..=3 {
        talker.send(&format!("PRIVMSG #room :old line {i}")).await;
        talker.expect_has(&format!(":old line {i}")).await;
    }
    let caps = "echo-message batch server-time message-tags";
    let mut sender = irc_client(irc, "sender", caps).await;
    let from = sender.seen.len();
    sender
        .send_raw(b"JOIN #room\r\nPRIVMSG #room :hello from irssi\r\n")
        .await;
    sender.expect_has(":hello from irssi").await;
    let got = &sender.seen[from..];
    let at = |what: &dyn Fn(&str) -> bool| {
        got.iter()
            .position(|l| what(l))
            .unwrap_or_else(|| panic!("not in {got:#?}"))
    };
    let join = at(&|l| l.ends_with(":sender!sender@natter JOIN #room"));
    let names = at(&|l| l.contains(" 366 sender #room "));
    let open = at(&|l| l.contains(" BATCH +") && l.ends_with(" chathistory #room"));
    let close = at(&|l| l.contains(" BATCH -"));
    let old = at(&|l| l.ends_with(":old line 3"));
    let echo = at(&|l| l.ends_with(":hello from irssi"));
    assert!(
        join < names && names < open && open < old && old < close && close < echo,
        "{got:#?}"
    );
    let join = talker.expect_has(" JOIN #room").await;
    assert!(join.ends_with(":sender!sender@natter JOIN #room"), "{join}");
    let line = talker.expect_has(" PRIVMSG #room ").await;
    assert!(line.ends_with(":hello from irssi"), "{line}");
    let status = sigterm(&mut server).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// Nick changes past their burst (`NICK_BURST`) are refused on every door, over real
/// sockets: `438` on IRC, the words on nc, `Error { Flood, Re::Nick }` in binary; each keeps
/// its nick, and the room hears only the changes made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nick_changes_too_fast_are_refused_on_every_door() {
    use natter_core::limits::NICK_BURST;
    use natter_core::wire::{ClientMsg, ErrorKind, EventKind, Re, ServerMsg};
    let (server, natter, irc) = patient_server().await;
    let mut i = irc_client(irc, "ircer", "").await;
    i.send("JOIN #lobby").await;
    i.expect(|l| numeric(l) == Some("366"), "the end of NAMES")
        .await;
    let (mut b, _) = BinClient::hello(natter, "binner", None).await;
    b.join("#lobby").await;
    let (mut nc, _) = TextClient::entered(natter, "nc").await;

    for k in 0..NICK_BURST {
        nc.send(&format!("/nick nc{k}")).await;
        nc.expect_has(&format!("you are now known as nc{k}")).await;
    }
    nc.send("/nick nc9").await;
    nc.expect_has("you are changing nicks too fast: try again in 10 s")
        .await;

    for k in 0..NICK_BURST {
        i.send(&format!("NICK irc{k}")).await;
        i.expect_has(&format!("NICK :irc{k}")).await;
    }
    let l = expect_numeric(&mut i, b"NICK irc9\r\n", "438").await;
    assert_eq!(
        l,
        format!(
            ":natter.irc 438 irc{} irc9 :Nick change too fast. Please wait 10 seconds.",
            NICK_BURST - 1
        )
    );

    for k in 0..=NICK_BURST {
        b.send(&ClientMsg::Nick {
            nick: nick(&format!("bin{k}")),
        })
        .await;
    }
    let got = b
        .expect(|m| matches!(m, ServerMsg::Error { .. }), "the refusal")
        .await;
    let ServerMsg::Error { kind, re, detail } = got else {
        unreachable!()
    };
    assert_eq!(
        (kind, re),
        (
            ErrorKind::Flood,
            Re::Nick(nick(&format!("bin{NICK_BURST}")))
        )
    );
    assert!(detail.contains("too fast"), "{detail}");
    // The room heard the burst's changes of each, and nothing of a refused one.
    b.msgs_for(Duration::from_millis(300)).await;
    let renames: Vec<String> = b
        .seen
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Event(e) => match &e.kind {
                EventKind::Nick { new } => Some(new.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let made: Vec<String> = ["nc", "irc", "bin"]
        .iter()
        .flat_map(|door| (0..NICK_BURST).map(move |k| format!("{door}{k}")))
        .collect();
    assert_eq!(renames, made, "{:?}", b.seen);
    drop(server);
}
