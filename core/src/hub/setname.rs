//! IRC's `SETNAME` (IRCv3 `setname`): a user on IRC changes its real name, which its IRC
//! connections keep (WHO, WHOIS, WHOWAS and extended-join show it). The user's connections and
//! its co-members' are told ([`Info::SetName`]; IRC clients with `setname` see `SETNAME`), and
//! so are those monitoring its nick (with `extended-monitor`). natter's own clients and nc
//! show no real names and hear nothing. In a cluster the user's record carries its IRC user
//! and real names ([`super::cluster::Presence`]'s `irc`): other nodes show the new one in WHO
//! and WHOIS, and tell their users sharing a room with it ([`Hub::handle_presence`]).

use super::dialect::{AnyDialect, Reply};
use super::query::Info;
use super::{ConnId, Hub};

impl Hub {
    /// `conn`'s user's real name is now `realname` on each of its IRC connections.
    pub(super) fn set_realname(&mut self, conn: ConnId, realname: Box<str>) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let Some(nick) = self.users.get(&uid).map(|u| u.nick.clone()) else {
            return;
        };
        let own: Vec<ConnId> = self.user_conns(uid).collect();
        for c in &own {
            if let Some(AnyDialect::Irc(i)) = self.conns.get_mut(c).and_then(|c| c.dialect_mut()) {
                i.set_realname(&realname);
            }
        }
        self.cluster_presence_changed(&nick);
        let news = Info::SetName { nick, realname };
        self.tell_co_members(uid, &news);
        for c in own {
            self.reply(c, Reply::Info(news.clone()));
        }
    }
}
