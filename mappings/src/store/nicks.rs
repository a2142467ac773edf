//! Nickname reservations (RFC 7701 §7, XEP-0045 §7.2.9) and the IRC nicks
//! learned for remote users.

use std::collections::BTreeSet;

use super::{IrcNick, MappingStore, Reservation};
use crate::alias::{check_irc_nick, check_msrp_nick, check_owner, normalize_network};
use crate::cache::Cache;
use crate::db::{StoredIrcNick, StoredReservation, is_unique_violation};
use crate::{MappingError, NickScope, casefold, nick_key};

impl MappingStore {
    // -- nickname reservations (RFC 7701 §7, XEP-0045 §7.2.9) -------------

    /// Reserves `nick` for `owner` in `scope`. Idempotent for the same owner;
    /// fails with [`MappingError::NickTaken`] when another owner holds the
    /// nick (compared by [`nick_key`]) in this scope or, if the scope is
    /// bridged, anywhere in the bridge.
    pub async fn reserve_nick(
        &self,
        scope: &NickScope,
        nick: &str,
        owner: &str,
    ) -> Result<Reservation, MappingError> {
        let scope = scope.normalized()?;
        let nick = check_msrp_nick(nick)?;
        check_owner("nickname owner", owner)?;
        let scope_key = self.scope_key(&scope);
        let nick_key = nick_key(&nick);
        let _write = self.inner.write.lock().await;
        {
            let cache = self.read_cache();
            let related = cache.related_scope_keys(&scope, &scope_key);
            let mut mine = None;
            for r in cache.reservations_in(&nick_key, &related) {
                if r.owner != owner {
                    return Err(MappingError::NickTaken {
                        nick: r.nick.clone(),
                        owner: r.owner.clone(),
                    });
                }
                if r.scope_key == scope_key {
                    mine = Some(r.nick.clone());
                }
            }
            if let Some(nick) = mine {
                return Ok(Reservation {
                    scope,
                    nick,
                    owner: owner.to_owned(),
                });
            }
        }
        let row = StoredReservation {
            scope_key,
            scope: scope.to_string(),
            nick_key,
            nick: nick.clone(),
            owner: owner.to_owned(),
        };
        let holder = self.inner.db.insert_reservation(&row).await?;
        if holder != owner {
            return Err(MappingError::NickTaken {
                nick,
                owner: holder,
            });
        }
        self.write_cache().put_reservation(row);
        Ok(Reservation {
            scope,
            nick,
            owner: owner.to_owned(),
        })
    }

    /// Releases `owner`'s reservation of `nick` in exactly `scope`; `false`
    /// if they held none there.
    pub async fn release_nick(
        &self,
        scope: &NickScope,
        nick: &str,
        owner: &str,
    ) -> Result<bool, MappingError> {
        let scope = scope.normalized()?;
        let scope_key = self.scope_key(&scope);
        let nick_key = nick_key(nick);
        let _write = self.inner.write.lock().await;
        let removed = self
            .inner
            .db
            .delete_reservation(&scope_key, &nick_key, owner)
            .await?;
        if removed {
            self.write_cache().remove_reservation(&scope_key, &nick_key);
        }
        Ok(removed)
    }

    /// Who holds `nick` in `scope` (or anywhere in its bridge).
    pub fn nick_owner(&self, scope: &NickScope, nick: &str) -> Option<String> {
        let scope = scope.normalized().ok()?;
        let scope_key = self.scope_key(&scope);
        let nick_key = nick_key(nick);
        let cache = self.read_cache();
        let related = cache.related_scope_keys(&scope, &scope_key);
        cache
            .reservations_in(&nick_key, &related)
            .next()
            .map(|r| r.owner.clone())
    }

    /// Every reservation, by scope then nick.
    pub fn reservations(&self) -> Vec<Reservation> {
        let cache = self.read_cache();
        let mut all: Vec<(String, String, Reservation)> = cache
            .reservations
            .values()
            .flatten()
            .filter_map(|r| {
                Some((
                    r.scope_key.clone(),
                    r.nick_key.clone(),
                    Reservation {
                        scope: r.scope.parse().ok()?,
                        nick: r.nick.clone(),
                        owner: r.owner.clone(),
                    },
                ))
            })
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all.into_iter().map(|(_, _, r)| r).collect()
    }

    // -- learned IRC nicks ----------------------------------------------------

    /// Remembers that remote user `who` (a canonical address string) goes by
    /// `nick` on `network`, replacing any nick they had there. Fails with
    /// [`MappingError::NickTaken`] when another user has that nick there
    /// (compared by the network's CASEMAPPING).
    pub async fn set_irc_nick(
        &self,
        network: &str,
        who: &str,
        nick: &str,
    ) -> Result<(), MappingError> {
        let network = normalize_network(network)?;
        check_owner("remote user address", who)?;
        let nick = check_irc_nick(nick)?;
        let row = StoredIrcNick {
            nick_key: casefold(self.casemapping(&network), nick),
            network,
            who: who.to_owned(),
            nick: nick.to_owned(),
        };
        let _write = self.inner.write.lock().await;
        {
            let cache = self.read_cache();
            if let Some(holder) = cache
                .irc_by_nick
                .get(&(row.network.clone(), row.nick_key.clone()))
            {
                if holder != who {
                    return Err(self.irc_nick_taken(&cache, &row.network, holder));
                }
                if cache
                    .irc_by_who
                    .get(&(row.network.clone(), row.who.clone()))
                    .map(|(n, _)| n.as_str())
                    == Some(nick)
                {
                    return Ok(());
                }
            }
        }
        match self.inner.db.upsert_irc_nick(&row).await {
            Ok(()) => {
                self.write_cache().put_irc_nick(row);
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => match self
                .inner
                .db
                .irc_nick_holder(&row.network, &row.nick_key)
                .await?
            {
                Some(holder) => Err(MappingError::NickTaken {
                    nick: row.nick,
                    owner: holder,
                }),
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets `who`'s nick on `network`; `false` if none was known.
    pub async fn forget_irc_nick(&self, network: &str, who: &str) -> Result<bool, MappingError> {
        let network = normalize_network(network)?;
        let _write = self.inner.write.lock().await;
        let removed = self.inner.db.delete_irc_nick(&network, who).await?;
        self.write_cache().remove_irc_nick(&network, who);
        Ok(removed)
    }

    /// The nick learned for `who` on `network`.
    pub fn irc_nick_for(&self, network: &str, who: &str) -> Option<String> {
        let network = normalize_network(network).ok()?;
        self.read_cache()
            .irc_by_who
            .get(&(network, who.to_owned()))
            .map(|(nick, _)| nick.clone())
    }

    /// The remote user who was given `nick` on `network` (compared by the
    /// network's CASEMAPPING).
    pub fn irc_owner_of(&self, network: &str, nick: &str) -> Option<String> {
        let network = normalize_network(network).ok()?;
        let key = casefold(self.casemapping(&network), nick);
        self.read_cache().irc_by_nick.get(&(network, key)).cloned()
    }

    /// Every learned IRC nick, by network then user.
    pub fn irc_nicks(&self) -> Vec<IrcNick> {
        let cache = self.read_cache();
        let sorted: BTreeSet<(&String, &String, &String)> = cache
            .irc_by_who
            .iter()
            .map(|((net, who), (nick, _))| (net, who, nick))
            .collect();
        sorted
            .into_iter()
            .map(|(network, who, nick)| IrcNick {
                network: network.clone(),
                who: who.clone(),
                nick: nick.clone(),
            })
            .collect()
    }

    fn irc_nick_taken(&self, cache: &Cache, network: &str, holder: &str) -> MappingError {
        let nick = cache
            .irc_by_who
            .get(&(network.to_owned(), holder.to_owned()))
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        MappingError::NickTaken {
            nick,
            owner: holder.to_owned(),
        }
    }
}
