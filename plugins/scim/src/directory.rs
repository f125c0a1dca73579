//! Reading the directory: paged listings of Users and Groups (RFC 7644
//! §3.4.2: `filter`, `startIndex`, `count`), and turning member and manager
//! ids into users.
//!
//! Paging: the cursor is the next 1-based `startIndex`. A page asks for
//! `count = page_size`; the next page starts after the resources actually
//! received (a server may send fewer than asked, or cap `count`), and the
//! listing ends at `totalResults` or at an empty page (a server that gives
//! no `totalResults` costs one request more).
//!
//! Users are resolved by id with `GET /Users/{id}`, or, when that would take
//! many more requests than reading the whole directory, by listing all Users
//! (the cost is compared against `totalResults` of a one-item probe). A
//! user's `manager` is the manager's e-mail address (the WIT field), so the
//! managers of the users returned are resolved too.

use std::collections::HashMap;

use vakt_plugin_sdk::PluginError;
use vakt_plugin_sdk::identity::{Group, GroupPage, User, UserPage};

use crate::client::{Base, Reply, Request, Transport};
use crate::model::{ListResponse, ScimGroup, ScimUser, quote};

/// Below this many unknown ids, resolve one by one without a probe.
const FEW: usize = 20;
/// Pages of one internal scan of the directory, at most.
const MAX_SCAN_PAGES: usize = 10_000;

/// The SCIM service behind a transport, with the plugin's settings.
pub struct Scim<T> {
    pub(crate) transport: T,
    pub(crate) base: Base,
    pub(crate) page_size: u32,
    /// Users read so far, by id (kept across the pages of one listing, see
    /// `lib.rs`).
    pub known: HashMap<String, ScimUser>,
}

impl<T: Transport> Scim<T> {
    pub fn new(transport: T, base: Base, page_size: u32) -> Self {
        Scim {
            transport,
            base,
            page_size,
            known: HashMap::new(),
        }
    }

    /// Sends and maps an unwanted status to an error; `what` names the
    /// resource for a 404.
    pub(crate) fn call(&mut self, request: &Request, what: &str) -> Result<Reply, PluginError> {
        let reply = self.transport.send(request)?;
        self.base.check(request, &reply, what)?;
        Ok(reply)
    }

    pub(crate) fn get<D: serde::de::DeserializeOwned>(
        &mut self,
        request: &Request,
        what: &str,
    ) -> Result<(D, Reply), PluginError> {
        let reply = self.call(request, what)?;
        Ok((self.base.json(request, &reply)?, reply))
    }

    /// One page of `endpoint` (`Users`, `Groups`) from `start`.
    pub fn page(
        &mut self,
        endpoint: &str,
        filter: Option<&str>,
        start: u64,
        count: u32,
        extra: &[(&str, &str)],
    ) -> Result<PageOf, PluginError> {
        let mut request = Request::get(endpoint)
            .query("startIndex", start)
            .query("count", count);
        if let Some(f) = filter.map(str::trim).filter(|f| !f.is_empty()) {
            request = request.query("filter", f);
        }
        for (k, v) in extra {
            request = request.query(k, v);
        }
        let what = format!("the SCIM endpoint `{endpoint}`");
        let (list, _) = self.get::<ListResponse>(&request, &what)?;
        page_of(list, start).map_err(|why| {
            PluginError::permanent(format_args!(
                "GET {} (startIndex={start}, count={count}): {why}",
                self.base.display(&request)
            ))
        })
    }

    pub fn list_users(
        &mut self,
        filter: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<UserPage, PluginError> {
        let start = parse_cursor(cursor)?;
        let page = self.page("Users", filter, start, self.page_size, &[])?;
        let users = parse_all::<ScimUser>(&page.resources, "User")?;
        for u in &users {
            self.known.insert(u.id.clone(), u.clone());
        }
        self.resolve_managers(&users)?;
        Ok(UserPage {
            users: users.iter().map(|u| u.to_wit(&self.known)).collect(),
            next: page.next.map(|n| n.to_string()),
        })
    }

    pub fn list_groups(
        &mut self,
        filter: Option<&str>,
        include_members: bool,
        cursor: Option<&str>,
    ) -> Result<GroupPage, PluginError> {
        let start = parse_cursor(cursor)?;
        let extra: &[(&str, &str)] = if include_members {
            &[]
        } else {
            &[("excludedAttributes", "members")]
        };
        let page = self.page("Groups", filter, start, self.page_size, extra)?;
        let groups = parse_all::<ScimGroup>(&page.resources, "Group")?;
        if include_members {
            let ids: Vec<String> = groups
                .iter()
                .flat_map(|g| g.members())
                .filter(|m| !m.is_group())
                .filter_map(|m| m.value.clone())
                .collect();
            self.resolve(&ids)?;
            let members: Vec<ScimUser> = ids
                .iter()
                .filter_map(|id| self.known.get(id))
                .cloned()
                .collect();
            self.resolve_managers(&members)?;
        }
        let mut out = Vec::with_capacity(groups.len());
        for g in &groups {
            let mut members = Vec::new();
            if include_members {
                for m in g.members() {
                    let Some(id) = m.value.as_deref() else {
                        continue;
                    };
                    if m.is_group() {
                        self.transport.warn(&format!(
                            "group `{}` has the group `{id}` as a member; nested groups are not expanded",
                            g.id
                        ));
                        continue;
                    }
                    members.push(match self.known.get(id) {
                        Some(u) => u.to_wit(&self.known),
                        None => {
                            self.transport.warn(&format!(
                                "member `{id}` of group `{}` is not a User the server knows",
                                g.id
                            ));
                            m.placeholder(id)
                        }
                    });
                }
            }
            out.push(Group {
                id: g.id.clone(),
                name: g.display_name.clone().unwrap_or_else(|| g.id.clone()),
                members,
            });
        }
        Ok(GroupPage {
            groups: out,
            next: page.next.map(|n| n.to_string()),
        })
    }

    pub fn get_manager(&mut self, user: &str) -> Result<Option<User>, PluginError> {
        let (u, _) = self.find_user(user)?;
        let Some(manager_id) = u.manager_id().map(str::to_owned) else {
            return Ok(None);
        };
        self.resolve(std::slice::from_ref(&manager_id))?;
        let Some(manager) = self.known.get(&manager_id).cloned() else {
            self.transport.warn(&format!(
                "user `{}` names the manager `{manager_id}`, which the server does not know",
                u.id
            ));
            return Ok(None);
        };
        self.resolve_managers(std::slice::from_ref(&manager))?;
        Ok(Some(manager.to_wit(&self.known)))
    }

    /// A user by id, else by `userName`; with the reply's ETag.
    pub(crate) fn find_user(
        &mut self,
        user: &str,
    ) -> Result<(ScimUser, Option<String>), PluginError> {
        let user = user.trim();
        if user.is_empty() {
            return Err(PluginError::permanent("the user id is empty"));
        }
        let request = Request::get(format!("Users/{}", segment(user)));
        let reply = self.transport.send(&request)?;
        if reply.status != 404 {
            self.base.check(&request, &reply, "")?;
            let found: ScimUser = self.base.json(&request, &reply)?;
            return Ok((found, reply.etag));
        }
        let filter = format!("userName eq {}", quote(user));
        let page = self.page("Users", Some(&filter), 1, 2, &[])?;
        let mut found = parse_all::<ScimUser>(&page.resources, "User")?;
        match found.len() {
            1 => Ok((found.remove(0), None)),
            0 => Err(PluginError::permanent(format_args!(
                "the SCIM user `{user}` was not found (neither as an id nor as a userName) at {}",
                self.base.as_str()
            ))),
            _ => Err(PluginError::permanent(format_args!(
                "more than one SCIM user has the userName `{user}`: give the user's id"
            ))),
        }
    }

    /// Reads the managers of `users` that are not known yet.
    fn resolve_managers(&mut self, users: &[ScimUser]) -> Result<(), PluginError> {
        let ids: Vec<String> = users
            .iter()
            .filter_map(|u| u.manager_id().map(str::to_owned))
            .collect();
        self.resolve(&ids)
    }

    /// Reads the users with these ids that are not known yet (ids the
    /// server does not know stay out).
    pub(crate) fn resolve(&mut self, ids: &[String]) -> Result<(), PluginError> {
        let mut missing: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !self.known.contains_key(*id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        if missing.len() > FEW {
            let probe = self.page("Users", None, 1, 1, &[("attributes", "id")])?;
            let total = probe.total.unwrap_or(u64::MAX);
            if scan_is_cheaper(missing.len(), total, self.page_size) {
                return self.scan_users();
            }
        }
        for id in missing {
            let request = Request::get(format!("Users/{}", segment(id)));
            let reply = self.transport.send(&request)?;
            if reply.status == 404 {
                continue;
            }
            self.base.check(&request, &reply, "")?;
            let user: ScimUser = self.base.json(&request, &reply)?;
            self.known.insert(id.to_owned(), user);
        }
        Ok(())
    }

    /// Reads every User.
    fn scan_users(&mut self) -> Result<(), PluginError> {
        let mut start = 1;
        for _ in 0..MAX_SCAN_PAGES {
            let page = self.page("Users", None, start, self.page_size, &[])?;
            for u in parse_all::<ScimUser>(&page.resources, "User")? {
                self.known.insert(u.id.clone(), u);
            }
            match page.next {
                Some(next) => start = next,
                None => return Ok(()),
            }
        }
        Err(PluginError::permanent(format_args!(
            "reading all Users did not end after {MAX_SCAN_PAGES} pages"
        )))
    }
}

/// Whether reading the whole directory (`total` users, `page_size` a page)
/// is cheaper than `missing` single reads, a page counted as ten reads (a
/// page of 100 took 17 times a single read on scim2-server on loopback; a
/// remote service's latency brings the two closer).
pub fn scan_is_cheaper(missing: usize, total: u64, page_size: u32) -> bool {
    let pages = total.div_ceil(u64::from(page_size.max(1)));
    pages.saturating_mul(10) < missing as u64
}

/// The cursor as a 1-based `startIndex`.
pub fn parse_cursor(cursor: Option<&str>) -> Result<u64, PluginError> {
    match cursor.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(1),
        Some(c) => c.parse::<u64>().ok().filter(|&n| n >= 1).ok_or_else(|| {
            PluginError::permanent(format_args!(
                "the cursor `{c}` is not one this plugin gave (a startIndex from 1 up)"
            ))
        }),
    }
}

/// A path segment: the id percent-encoded.
pub fn segment(id: &str) -> String {
    vakt_plugin_sdk::http::url::encode_component(id)
}

/// The resources of a page and where the next starts, or why the answer
/// is not a usable ListResponse.
pub fn page_of(list: ListResponse, start: u64) -> Result<PageOf, String> {
    let total = list.total_results;
    let resources = match list.resources {
        Some(r) => r,
        // `Resources` is required when totalResults is not zero (RFC 7644 §3.4.2).
        None if total == Some(0)
            || total.is_some_and(|t| start > t)
            || list.items_per_page == Some(0) =>
        {
            Vec::new()
        }
        None => {
            return Err(format!(
                "the answer is not a SCIM ListResponse with `Resources` (totalResults {})",
                total.map_or("missing".to_owned(), |t| t.to_string())
            ));
        }
    };
    if let Some(s) = list
        .start_index
        .filter(|&s| s != start && !resources.is_empty())
    {
        return Err(format!(
            "the server answered startIndex {s} for a request from {start}: it does not page \
             with startIndex (RFC 7644 §3.4.2.4)"
        ));
    }
    let received = resources.len() as u64;
    let next = match total {
        _ if received == 0 => None,
        Some(t) => Some(start + received).filter(|&n| n <= t),
        // No totalResults (required by RFC 7644, yet): a short page may be
        // the server's cap on `count`, so only an empty page ends.
        None => Some(start + received),
    };
    Ok(PageOf {
        resources,
        next,
        total,
    })
}

/// See [`page_of`].
#[derive(Debug)]
pub struct PageOf {
    pub resources: Vec<serde_json::Value>,
    pub next: Option<u64>,
    pub total: Option<u64>,
}

/// Parses every resource; the error names the first that does not fit.
pub fn parse_all<R: serde::de::DeserializeOwned>(
    resources: &[serde_json::Value],
    kind: &str,
) -> Result<Vec<R>, PluginError> {
    resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            R::deserialize(r).map_err(|e| {
                PluginError::permanent(format_args!(
                    "resource {} of the page is not a SCIM {kind} ({e}): {}",
                    i + 1,
                    crate::client::snippet(r.to_string().as_bytes())
                ))
            })
        })
        .collect()
}
