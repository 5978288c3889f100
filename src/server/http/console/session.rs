//! Console sessions: what a browser holds after a person pasted a token into `/ui/login`.
//!
//! A session is a random id (256 bits, in an HttpOnly, SameSite=Strict cookie) bound to the
//! principal the token was verified as, with its own CSRF token for writing forms. The table
//! keeps only the SHA-256 of each id (a memory dump or a log line shows no usable cookie), is
//! bounded (the least recently used session goes first) and forgets a session idle for longer
//! than the idle timeout. Sessions live in this process: a restart logs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::guard::Principal;

/// The cookie's name.
pub(super) const COOKIE: &str = "tagwarden_console";

/// What a request authenticated by a session knows of it.
#[derive(Debug, Clone)]
pub(super) struct SessionView {
    /// Names the session in the audit log (not the cookie: knowing it grants nothing).
    pub(super) public_id: String,
    /// The token every writing form of this session carries.
    pub(super) csrf: String,
}

struct Session {
    principal: Principal,
    view: SessionView,
    last_seen: Instant,
    /// When it ends however busy: when the OAuth token that opened it expires, and at most
    /// `MAX_LIFETIME` after login (a static token may have been revoked since; a session must
    /// not outlive it by more than this).
    ends: Instant,
}

/// Sessions one principal may hold: logging in again and again evicts that principal's own
/// oldest session, never other people's.
pub(super) const PER_PRINCIPAL: usize = 10;
/// The longest a console session lives, busy or not.
pub(super) const MAX_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The open console sessions.
pub(super) struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
    max: usize,
    idle: Duration,
}

/// 256 random bits as hex (two v4 UUIDs: 244 bits from the OS generator, plus fixed bits).
pub(super) fn random_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", a.simple(), b.simple())
}

fn key(id: &str) -> [u8; 32] {
    sha2::Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub(super) fn new(max: usize, idle: Duration) -> Sessions {
        Sessions {
            table: Mutex::new(HashMap::new()),
            max: max.max(1),
            idle,
        }
    }

    /// A new session for `principal`, ending when `token_expires` (an OAuth token's `exp`)
    /// if that is sooner than `MAX_LIFETIME`: its cookie value and its view.
    pub(super) fn create(
        &self,
        principal: Principal,
        token_expires: Option<SystemTime>,
    ) -> (String, SessionView) {
        let id = random_token();
        let view = SessionView {
            public_id: format!("console:{}", &random_token()[..12]),
            csrf: random_token(),
        };
        let now = Instant::now();
        let token_left = token_expires.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let ends = now + token_left.map_or(MAX_LIFETIME, |left| left.min(MAX_LIFETIME));
        let mut table = self.lock();
        table.retain(|_, s| self.live(s, now));
        // The cap holds at all times, so one eviction makes room.
        let own: Vec<([u8; 32], Instant)> = table
            .iter()
            .filter(|(_, s)| s.principal.id == principal.id)
            .map(|(k, s)| (*k, s.last_seen))
            .collect();
        if own.len() >= PER_PRINCIPAL
            && let Some((k, _)) = own.iter().min_by_key(|(_, seen)| *seen)
        {
            table.remove(k);
        }
        while table.len() >= self.max {
            let oldest = table
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    table.remove(&k);
                }
                None => break,
            }
        }
        table.insert(
            key(&id),
            Session {
                principal,
                view: view.clone(),
                last_seen: now,
                ends,
            },
        );
        (id, view)
    }

    /// The principal and view of a live session (and it is seen now); None when unknown or
    /// idle too long (then it is forgotten).
    pub(super) fn touch(&self, id: &str) -> Option<(Principal, SessionView)> {
        let k = key(id);
        let now = Instant::now();
        let mut table = self.lock();
        let session = table.get_mut(&k)?;
        if !self.live(session, now) {
            table.remove(&k);
            return None;
        }
        session.last_seen = now;
        Some((session.principal.clone(), session.view.clone()))
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now < s.ends
    }

    /// Ends a session (logout).
    pub(super) fn end(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a presented CSRF token is the session's (constant time; empty never matches).
pub(super) fn csrf_matches(view: &SessionView, presented: &str) -> bool {
    !presented.is_empty() && bool::from(view.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

/// Every session cookie value in a `Cookie` header, in order. Another site of the same host
/// (any port) can plant a `tagwarden_console` cookie with a narrower path, which browsers send
/// first: the caller tries each until one names a live session.
pub(super) fn cookie_values(header: &str) -> impl Iterator<Item = &str> {
    header.split(';').filter_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then_some(value)
    })
}

/// The `Set-Cookie` value that holds a session (`secure`: only over HTTPS). A browser-session
/// cookie: the server's idle timeout decides how long it is worth anything.
pub(super) fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value that removes it.
pub(super) fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Role;

    fn alice() -> Principal {
        Principal {
            id: "token:alice".into(),
            role: Role::Viewer,
        }
    }

    #[test]
    fn a_session_ends_when_the_oauth_token_that_opened_it_expires() {
        let s = Sessions::new(10, Duration::from_secs(3600));
        let expired = SystemTime::now() - Duration::from_secs(1);
        let (id, _) = s.create(alice(), Some(expired));
        assert!(s.touch(&id).is_none(), "the token had expired: no session");
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        let (id, _) = s.create(alice(), Some(in_an_hour));
        assert!(s.touch(&id).is_some());
        let table = s.lock();
        let session = table.get(&key(&id)).unwrap();
        let left = session.ends.duration_since(Instant::now());
        assert!(left <= Duration::from_secs(3600) && left > Duration::from_secs(3500));
        drop(table);
        // A static token: the 8-hour cap.
        let (id, _) = s.create(alice(), None);
        let table = s.lock();
        let left = table[&key(&id)].ends.duration_since(Instant::now());
        assert!(left > Duration::from_secs(7 * 3600) && left <= MAX_LIFETIME);
    }

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends_at_logout() {
        let s = Sessions::new(10, Duration::from_secs(60));
        let (id, view) = s.create(alice(), None);
        assert_eq!(id.len(), 64);
        let (p, v) = s.touch(&id).unwrap();
        assert_eq!(p, alice());
        assert_eq!(v.csrf, view.csrf);
        assert!(s.touch(&view.csrf).is_none());
        assert!(s.touch(&view.public_id).is_none());
        s.end(&id);
        assert!(s.touch(&id).is_none());
    }

    #[test]
    fn idle_sessions_are_forgotten_and_the_table_is_bounded() {
        let s = Sessions::new(10, Duration::ZERO);
        let (id, _) = s.create(alice(), None);
        assert!(s.touch(&id).is_none());
        let s = Sessions::new(3, Duration::from_secs(60));
        let first = s.create(alice(), None).0;
        for _ in 0..5 {
            s.create(alice(), None);
        }
        assert_eq!(s.len(), 3);
        assert!(
            s.touch(&first).is_none(),
            "the least recently used went first"
        );
    }

    #[test]
    fn one_principal_logging_in_again_and_again_evicts_only_its_own_sessions() {
        let s = Sessions::new(1000, Duration::from_secs(60));
        let bob = Principal {
            id: "token:bob".into(),
            role: Role::Approver,
        };
        let (bobs, _) = s.create(bob, None);
        let first = s.create(alice(), None).0;
        for _ in 0..(PER_PRINCIPAL * 50) {
            s.create(alice(), None);
        }
        assert_eq!(s.len(), PER_PRINCIPAL + 1);
        assert!(s.touch(&first).is_none());
        assert!(
            s.touch(&bobs).is_some(),
            "another principal's session stays"
        );
    }

    #[test]
    fn csrf_and_cookies() {
        let s = Sessions::new(10, Duration::from_secs(60));
        let (_, view) = s.create(alice(), None);
        assert!(csrf_matches(&view, &view.csrf.clone()));
        assert!(!csrf_matches(&view, ""));
        assert!(!csrf_matches(&view, "x"));
        assert_eq!(
            cookie_values("a=b; tagwarden_console=abc; c=d").next(),
            Some("abc")
        );
        assert_eq!(cookie_values("tagwarden_console=").next(), None);
        assert_eq!(
            cookie_values("tagwarden_console=planted; x=y; tagwarden_console=real")
                .collect::<Vec<_>>(),
            vec!["planted", "real"]
        );
        let c = set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
    }
}
