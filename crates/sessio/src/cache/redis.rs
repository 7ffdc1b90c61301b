//! The Redis cache: sessions as Redis strings with a TTL, on one server or a Redis Cluster.
//!
//! # Layout
//!
//! * **Key**: `cache_key_prefix` + session key (`sessio.session:` by default), never the
//!   bare session key, so sessions cannot collide with, or be read as, other data in the same
//!   Redis (Django CVE-2011-4136).
//! * **Value**: a signed string in Django's format (salt `store_salt`), as in a
//!   `django_session.session_data` column, so a value read from Redis is authenticated
//!   like a database row, and a corrupted or foreign value loads as an empty session. The
//!   `cache` engine never compresses it; in front of a database (`cached-db`) it is the
//!   database's own text, which is the record's version.
//! * **TTL**: the seconds until the session's expiry date (at least one). Redis drops
//!   expired sessions by itself; `clear_expired` has nothing to do.
//!
//! # Operations
//!
//! [`RedisStore`] keeps the values; the core's [`ServerEngine`] creates ids, encodes and
//! merges around it ([`RedisCacheEngine`], whose codec never compresses: no Django reads
//! these values, and for session-sized data zlib costs more CPU than the bytes it saves).
//!
//! `insert` is `SET key value NX EX ttl` (a new key never overwrites another session);
//! an unconditional `update` is `SET key value XX EX ttl` (a session deleted meanwhile, by
//! a logout or its TTL, is [`Update::Gone`] and is never resurrected); `load` is `GET`,
//! `delete` is `DEL`. An `update` from the version a request read is a compare-and-set
//! script: the key becomes the new value only if it still holds that value (the version of
//! a Redis record is its value), answering [`Update::Conflict`] when another write came
//! first (the core then merges) and [`Update::Gone`] when the key is gone. A save nothing
//! raced is that script run once: one round trip, no second read or decode.
//!
//! A load also checks the session's expiry against the configured clock (Redis's TTL runs
//! on the server's), from the time the value was signed: it decodes the value with a clone
//! of the engine's codec, which shares its table of verified values, so the core's decode
//! of the same value is a lookup.
//!
//! # Connections
//!
//! `redis://[user:password@]host[:port][/db]` uses one multiplexed connection that
//! reconnects by itself (the `redis` crate's `ConnectionManager`): concurrent requests are
//! pipelined on it, with no pool to size, and concurrent loads are combined into one
//! `MGET` by a reader task. `redis+cluster://[user:password@]host1:port1,host2:port2,...`
//! (or `redis-cluster://`) uses the cluster client, which routes each key to its node and
//! follows resharding. Every call is bounded by `store_timeout`: a server that is down or
//! stuck turns into an [`Error::Store`] (HTTP 503) within that time, never a hung request, and
//! service resumes by itself when the server is back.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult,
    Script, Value,
};
use time::OffsetDateTime;

use super::{plausible_key, ENGINE};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Version;
use crate::error::{redact_url, Error, Result};
use crate::server::ServerEngine;
use crate::store::{Payload, Record, SessionStore, Update};
use sessio_django::codec::StoreCodec;

/// The longest TTL set, far beyond any real session (Redis refuses TTLs that overflow).
const MAX_TTL_SECS: i64 = 100 * 365 * 24 * 3600;
/// Retries within one reconnection. None: while the server is down, each command makes
/// one connection attempt and fails at once (a quick 503 rather than a request held until
/// the timeout), and the first command after the server is back reconnects.
const RECONNECT_RETRIES: usize = 0;

/// Sessions in Redis or a Redis Cluster.
///
/// Cheap to share: every call clones a handle to the one multiplexed connection.
pub struct RedisStore {
    conn: Conn,
    /// The URL with any password hidden, for messages.
    url: String,
    prefix: String,
    /// A clone of the engine's codec (sharing its table of verified values), for the
    /// expiry check of `load`.
    codec: StoreCodec,
    clock: Arc<dyn Clock>,
    cookie_age: i64,
    timeout: Duration,
    swap_script: Script,
    /// The queue of the reader task that batches loads into `MGET`s (one server only:
    /// a cluster's keys live on different nodes, so it reads key by key).
    reader: Option<tokio::sync::mpsc::Sender<Get>>,
    /// The queue of the task that batches compare-and-sets into one script call (one
    /// server only, as `reader`).
    swapper: Option<tokio::sync::mpsc::Sender<SwapRequest>>,
}

/// Compare-and-set for `update` from a version, for one key or many in order: `KEYS[i]`
/// becomes its `new` (with TTL `ttl`) only if it still holds its `old`. `ARGV` holds
/// `old`, `new` and `ttl` for each key. Returns one result per key: 1 when swapped, 0 when
/// the value changed meanwhile, -1 when the key is gone.
const SWAP_SCRIPT: &str = r"
local out = {}
for i = 1, #KEYS do
  local old, new, ttl = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  local current = redis.call('GET', KEYS[i])
  if not current then
    out[i] = -1
  elseif current ~= old then
    out[i] = 0
  else
    redis.call('SET', KEYS[i], new, 'EX', ttl)
    out[i] = 1
  end
end
return out
";

/// A compare-and-set for the swapper task.
struct SwapRequest {
    redis_key: String,
    old: String,
    new: String,
    ttl: i64,
    reply: tokio::sync::oneshot::Sender<RedisResult<i64>>,
}

/// Runs the compare-and-sets that arrive together as one script call (see
/// [`SWAP_SCRIPT`]): one command instead of one per save (measured: `write` 37.7k/s
/// -> 43.0k/s on one core). Two saves of one session
/// in a batch run in order, so the second finds the first's value and merges.
async fn swap_batches(
    mut conn: ConnectionManager,
    mut queue: tokio::sync::mpsc::Receiver<SwapRequest>,
) {
    let script = Script::new(SWAP_SCRIPT);
    while let Some(batch) =
        crate::batch::next(&mut queue, MAX_READ_BATCH, |swap| !swap.reply.is_closed()).await
    {
        let mut call = script.prepare_invoke();
        for swap in &batch {
            call.key(&swap.redis_key)
                .arg(&swap.old)
                .arg(&swap.new)
                .arg(swap.ttl);
        }
        let result = call.invoke_async::<Vec<i64>>(&mut conn).await;
        reply_each(
            batch.into_iter().map(|swap| swap.reply),
            result,
            "saving sessions",
        );
    }
}

/// The most loads combined into one `MGET`.
const MAX_READ_BATCH: usize = 128;

/// A load for the reader task, with where to send the value.
struct Get {
    redis_key: String,
    reply: tokio::sync::oneshot::Sender<RedisResult<Option<String>>>,
}

/// Sends the loads that arrive together as one `MGET`: one command for Redis to parse and
/// answer, and one reply to read, instead of one per request (measured with 64 clients and
/// the server on one core: `read` 60.5k/s with one `GET` each, 91.3k batched). It waits for no
/// timer: each `MGET` takes whatever queued while the previous one was answered.
async fn read_batches(mut conn: ConnectionManager, mut queue: tokio::sync::mpsc::Receiver<Get>) {
    while let Some(batch) =
        crate::batch::next(&mut queue, MAX_READ_BATCH, |get| !get.reply.is_closed()).await
    {
        let mut cmd = redis::cmd("MGET");
        for get in &batch {
            cmd.arg(&get.redis_key);
        }
        let result = cmd.query_async::<Vec<Option<String>>>(&mut conn).await;
        reply_each(
            batch.into_iter().map(|get| get.reply),
            result,
            "loading sessions",
        );
    }
}

/// Sends each caller of a batch its item of `result`, or the error (its kind and text for
/// all but the first: a `RedisError` is not `Clone`).
fn reply_each<T>(
    replies: impl ExactSizeIterator<Item = tokio::sync::oneshot::Sender<RedisResult<T>>>,
    result: RedisResult<Vec<T>>,
    what: &'static str,
) {
    let n = replies.len();
    match result {
        Ok(values) if values.len() == n => {
            for (reply, value) in replies.zip(values) {
                let _ = reply.send(Ok(value));
            }
        }
        Ok(values) => {
            let detail = format!("{n} calls answered {}", values.len());
            for reply in replies {
                let e = RedisError::from((redis::ErrorKind::ResponseError, what, detail.clone()));
                let _ = reply.send(Err(e));
            }
        }
        Err(e) => {
            let (kind, detail) = (e.kind(), e.to_string());
            let mut first = Some(e);
            for reply in replies {
                let e = first
                    .take()
                    .unwrap_or_else(|| RedisError::from((kind, what, detail.clone())));
                let _ = reply.send(Err(e));
            }
        }
    }
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

// One connection type for commands and scripts, whichever the URL chose.
impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The nodes of a `redis+cluster://` or `redis-cluster://` URL, as `redis://` URLs; `None`
/// for any other URL.
fn cluster_nodes(url: &str) -> Option<Result<Vec<String>>> {
    let rest = url
        .strip_prefix("redis+cluster://")
        .or_else(|| url.strip_prefix("redis-cluster://"))?;
    // A cluster has only database 0: accept a trailing `/` or `/0`, nothing else.
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !(path.is_empty() || path == "0") {
        return Some(Err(Error::Config(format!(
            "cache URL `{}`: a Redis Cluster has only database 0",
            redact_url(url)
        ))));
    }
    // Credentials given on the first node apply to every node.
    let credentials = authority
        .split(',')
        .next()
        .and_then(|first| first.rsplit_once('@'))
        .map(|(userinfo, _)| userinfo);
    let nodes: Vec<String> = authority
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|node| match (node.contains('@'), credentials) {
            (false, Some(userinfo)) => format!("redis://{userinfo}@{node}"),
            _ => format!("redis://{node}"),
        })
        .collect();
    if nodes.is_empty() {
        return Some(Err(Error::Config(format!(
            "cache URL `{}` names no node: use redis+cluster://host1:port1,host2:port2,...",
            redact_url(url)
        ))));
    }
    Some(Ok(nodes))
}

/// The Redis `cache` engine: the [`RedisStore`] behind the core's [`ServerEngine`].
pub type RedisCacheEngine = ServerEngine<RedisStore>;

impl ServerEngine<RedisStore> {
    /// Connects to the Redis server or cluster that `config.cache_url()` names (see
    /// [`RedisStore::open`]), with a codec that never compresses: no Django reads these
    /// values (its cache backend pickles), and for session-sized data zlib costs more CPU
    /// than the bytes it saves are worth (it was more than half of the encoding time of a
    /// `write` request). Compressed values from earlier versions still load.
    pub async fn open(config: &Config) -> Result<Self> {
        let codec = config.store_codec().without_compression();
        let store = RedisStore::open_sharing(config, codec.clone()).await?;
        Ok(
            ServerEngine::with_codec(store, codec, config.clock().clone())
                .merging_for(config.store_timeout()),
        )
    }

    /// The Redis key of a session: never the bare session key.
    pub fn redis_key(&self, key: &str) -> String {
        self.store().redis_key(key)
    }
}

impl RedisStore {
    /// Connects to the Redis server or cluster that `config.cache_url()` names.
    ///
    /// Fails, naming the URL (without its password), when the server cannot be reached
    /// within `store_timeout`: a misconfigured or missing cache is reported at start-up,
    /// not on the first request.
    pub async fn open(config: &Config) -> Result<Self> {
        Self::open_sharing(config, config.store_codec()).await
    }

    /// As [`open`](Self::open), checking expiry with `codec`, a clone of the engine's: the
    /// engine's decode of a value this store has checked is then a lookup.
    pub(crate) async fn open_sharing(config: &Config, codec: StoreCodec) -> Result<Self> {
        let raw_url = config.cache_url();
        let url = redact_url(raw_url);
        let timeout = config.store_timeout();
        let invalid = |e: RedisError| {
            Error::Config(format!(
                "cache URL `{url}` is not a valid Redis URL ({e}): use \
                 redis://[:password@]host[:port][/db] or redis+cluster://host1:port1,host2:port2"
            ))
        };
        let unreachable = |e: RedisError| {
            Error::store(
                ENGINE,
                format!("could not connect to Redis at {url}: {e}; is the server running and reachable?"),
                e,
            )
        };
        let timed_out = |e| {
            Error::store(
                ENGINE,
                format!("could not connect to Redis at {url} within {timeout:?}; is the server running and reachable?"),
                e,
            )
        };

        let conn = match cluster_nodes(raw_url) {
            Some(nodes) => {
                let client = redis::cluster::ClusterClient::builder(nodes?)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    // Few, short retries: our own timeout bounds the call anyway, and a
                    // request is better answered 503 than held for long.
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(500)
                    .build()
                    .map_err(invalid)?;
                let conn = tokio::time::timeout(timeout, client.get_async_connection())
                    .await
                    .map_err(timed_out)?
                    .map_err(unreachable)?;
                Conn::Cluster(conn)
            }
            None => {
                let client = redis::Client::open(raw_url).map_err(invalid)?;
                // One plain attempt first: the manager retries its first connection, which
                // would hide "connection refused" or a wrong password behind a timeout.
                let probe = AsyncConnectionConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                let mut probe = tokio::time::timeout(
                    timeout,
                    client.get_multiplexed_async_connection_with_config(&probe),
                )
                .await
                .map_err(timed_out)?
                .map_err(unreachable)?;
                let _: String =
                    tokio::time::timeout(timeout, redis::cmd("PING").query_async(&mut probe))
                        .await
                        .map_err(timed_out)?
                        .map_err(unreachable)?;
                drop(probe);
                let settings = ConnectionManagerConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout)
                    .set_number_of_retries(RECONNECT_RETRIES);
                let conn = tokio::time::timeout(
                    timeout,
                    ConnectionManager::new_with_config(client, settings),
                )
                .await
                .map_err(timed_out)?
                .map_err(unreachable)?;
                Conn::Single(conn)
            }
        };
        let (reader, swapper) = match &conn {
            Conn::Single(c) => {
                // Both end when the engine (their only sender) is dropped.
                let (reads, rx) = tokio::sync::mpsc::channel(4 * MAX_READ_BATCH);
                tokio::spawn(read_batches(c.clone(), rx));
                let (swaps, rx) = tokio::sync::mpsc::channel(4 * MAX_READ_BATCH);
                tokio::spawn(swap_batches(c.clone(), rx));
                (Some(reads), Some(swaps))
            }
            Conn::Cluster(_) => (None, None),
        };
        let engine = Self {
            conn,
            url,
            prefix: config.cache_key_prefix().to_owned(),
            codec,
            clock: config.clock().clone(),
            cookie_age: config.cookie_age(),
            timeout,
            swap_script: Script::new(SWAP_SCRIPT),
            reader,
            swapper,
        };
        // Connecting is not enough: a wrong password or a wrong database shows here.
        let _: String = engine.run("PING", &redis::cmd("PING")).await?;
        Ok(engine)
    }

    /// The Redis key of a session: never the bare session key.
    pub fn redis_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// Runs one command, bounded by `store_timeout`.
    async fn run<T: FromRedisValue>(&self, what: &str, cmd: &Cmd) -> Result<T> {
        let mut conn = self.conn.clone();
        self.bounded(what, async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Awaits one call to Redis, bounded by `store_timeout`, its errors made [`Error::Store`].
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::store(
                ENGINE,
                format!("{what} failed on Redis at {}: {e}", self.url),
                e,
            )),
            Err(elapsed) => Err(Error::store(
                ENGINE,
                format!(
                    "{what} on Redis at {} got no answer within {:?}",
                    self.url, self.timeout
                ),
                elapsed,
            )),
        }
    }

    /// The stored value of `key`; `None` when there is no live session. A value that does
    /// not verify is returned as it is (the core reads it as an empty session, and the
    /// next write replaces it).
    async fn get(&self, what: &str, key: &str) -> Result<Option<String>> {
        let value: Option<String> = match &self.reader {
            Some(reader) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let get = Get {
                    redis_key: self.redis_key(key),
                    reply,
                };
                self.bounded(what, async {
                    if reader.send(get).await.is_err() {
                        return Err(RedisError::from((
                            redis::ErrorKind::IoError,
                            "the reader task has stopped",
                        )));
                    }
                    answer.await.unwrap_or_else(|_| {
                        Err(RedisError::from((
                            redis::ErrorKind::IoError,
                            "the reader task has stopped",
                        )))
                    })
                })
                .await?
            }
            None => {
                self.run(what, redis::cmd("GET").arg(self.redis_key(key)))
                    .await?
            }
        };
        let Some(value) = value else {
            return Ok(None);
        };
        if let Ok(decoded) = self.codec.decode(&value) {
            // Redis's TTL runs on the server's clock; this check applies the configured
            // one as well (it matters when that clock is not the system's, or is ahead).
            // The decode is remembered by the codec the engine shares.
            if let Some(signed_at) = decoded.signed_at {
                let saved = OffsetDateTime::from_unix_timestamp(signed_at)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                let expires = crate::expiry::date(Some(&decoded.data), saved, self.cookie_age);
                if expires <= self.clock.now() {
                    return Ok(None);
                }
            }
        }
        Ok(Some(value))
    }

    /// `SET key value EX ttl` with `NX` or `XX`; whether Redis stored it.
    async fn set(
        &self,
        what: &str,
        condition: &str,
        key: &str,
        value: &str,
        ttl: i64,
    ) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.redis_key(key))
            .arg(value)
            .arg(condition)
            .arg("EX")
            .arg(ttl);
        // "OK", or nil when the NX/XX condition did not hold.
        let reply: Option<String> = self.run(what, &cmd).await?;
        Ok(reply.is_some())
    }

    /// Runs the compare-and-set script: `key` becomes `new` only if it still holds `old`.
    async fn swap(&self, key: &str, old: &str, new: &str, ttl: i64) -> Result<Update> {
        let redis_key = self.redis_key(key);
        let swapped: i64 = match &self.swapper {
            Some(swapper) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let request = SwapRequest {
                    redis_key,
                    old: old.to_owned(),
                    new: new.to_owned(),
                    ttl,
                    reply,
                };
                let stopped = || {
                    RedisError::from((redis::ErrorKind::IoError, "the swapper task has stopped"))
                };
                self.bounded("saving a session", async {
                    swapper.send(request).await.map_err(|_| stopped())?;
                    answer.await.unwrap_or_else(|_| Err(stopped()))
                })
                .await?
            }
            None => {
                // A cluster routes the one key to its node.
                let mut conn = self.conn.clone();
                let mut call = self.swap_script.key(&redis_key);
                call.arg(old).arg(new).arg(ttl);
                let results: Vec<i64> = self
                    .bounded("saving a session", call.invoke_async(&mut conn))
                    .await?;
                match results.as_slice() {
                    [result] => *result,
                    _ => {
                        return Err(Error::Store {
                            engine: ENGINE,
                            message: format!(
                                "saving a session on Redis at {}: the compare-and-set \
                                 answered {} results for one key",
                                self.url,
                                results.len()
                            ),
                            source: None,
                        })
                    }
                }
            }
        };
        Ok(match swapped {
            1 => Update::Stored(Some(Version::stored(new))),
            // The key is gone (deleted, or its TTL ran out): never resurrect it.
            -1 => Update::Gone,
            // Another write changed the value first.
            _ => Update::Conflict,
        })
    }
}

/// Whole seconds from `now` until `expires`, rounded up, at least one.
fn ttl_secs(expires: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let secs = (expires - now).as_seconds_f64().ceil();
    (secs as i64).clamp(1, MAX_TTL_SECS)
}

impl SessionStore for RedisStore {
    fn name(&self) -> &'static str {
        ENGINE
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        if !plausible_key(id) {
            return Ok(None);
        }
        // The value as read is the version: a save from it is one compare-and-set.
        Ok(self.get("loading a session", id).await?.map(Record::Text))
    }

    /// `SET NX`: Django's cache `add`. A session already expired is not kept (Django's
    /// cache backend adds and drops it), and counts as stored.
    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        if !plausible_key(id) {
            return Err(Error::Config(format!(
                "`{id}` is not a valid session key for the Redis cache"
            )));
        }
        let now = self.clock.now();
        if expires <= now {
            return Ok(true);
        }
        self.set(
            "creating a session",
            "NX",
            id,
            record.text(),
            ttl_secs(expires, now),
        )
        .await
    }

    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        if !plausible_key(id) {
            return Ok(Update::Gone);
        }
        let ttl = ttl_secs(expires, self.clock.now());
        let new = record.text();
        match expected {
            Some(version) => match version.as_stored() {
                Some(old) => self.swap(id, old, new, ttl).await,
                // Not a version of a Redis record: it never matches.
                None => Ok(Update::Conflict),
            },
            None => {
                if self.set("saving a session", "XX", id, new, ttl).await? {
                    Ok(Update::Stored(Some(record.version())))
                } else {
                    // Deleted meanwhile (a logout, its TTL): never resurrect it.
                    Ok(Update::Gone)
                }
            }
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        if plausible_key(id) {
            let _: i64 = self
                .run(
                    "deleting a session",
                    redis::cmd("DEL").arg(self.redis_key(id)),
                )
                .await?;
        }
        Ok(())
    }

    async fn clear_expired(&self, _limit: usize) -> Result<u64> {
        // Redis drops a key when its TTL runs out: no expired session is ever left.
        Ok(0)
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        Ok(Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls() {
        let nodes = |url: &str| cluster_nodes(url).map(|r| r.unwrap());
        assert_eq!(
            nodes("redis+cluster://a:1,b:2"),
            Some(vec!["redis://a:1".to_string(), "redis://b:2".to_string()])
        );
        assert_eq!(
            nodes("redis-cluster://:pw@a:1,b:2/"),
            Some(vec![
                "redis://:pw@a:1".to_string(),
                "redis://:pw@b:2".to_string()
            ])
        );
        assert_eq!(
            nodes("redis+cluster://u:pw@a:1,v:x@b:2/0"),
            Some(vec![
                "redis://u:pw@a:1".to_string(),
                "redis://v:x@b:2".to_string()
            ])
        );
        assert_eq!(nodes("redis://a:1"), None);
        assert!(matches!(
            cluster_nodes("redis+cluster://a:1/3"),
            Some(Err(Error::Config(_)))
        ));
        assert!(matches!(
            cluster_nodes("redis+cluster://"),
            Some(Err(Error::Config(_)))
        ));
    }

    #[test]
    fn ttls() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(ttl_secs(t + time::Duration::seconds(10), t), 10);
        assert_eq!(ttl_secs(t + time::Duration::milliseconds(1500), t), 2);
        assert_eq!(ttl_secs(t + time::Duration::milliseconds(1), t), 1);
        assert_eq!(ttl_secs(t - time::Duration::seconds(5), t), 1);
        assert_eq!(
            ttl_secs(
                OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
                t
            ),
            MAX_TTL_SECS
        );
    }
}
