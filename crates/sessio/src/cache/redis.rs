//! The Redis cache: sessions as Redis strings with a TTL, on one server or a Redis Cluster.
//!
//! # Layout
//!
//! * **Key**: `cache_key_prefix` + session key (`sessio.session:` by default), never the
//!   bare session key, so sessions cannot collide with, or be read as, other data in the same
//!   Redis (Django CVE-2011-4136).
//! * **Value**: a signed string in Django's format (salt `store_salt`), as in a
//!   `django_session.session_data` column but never compressed, so a value read from Redis
//!   is authenticated like a database row, and a corrupted or foreign value loads as an
//!   empty session.
//! * **TTL**: the seconds until the session's expiry date (at least one). Redis drops
//!   expired sessions by itself; `clear_expired` has nothing to do.
//!
//! # Operations
//!
//! `create` is `SET key value NX EX ttl` (a new key never overwrites another session; a
//! taken key is retried with a fresh one); `save` is `SET key value XX EX ttl` (a session
//! deleted meanwhile, by a logout or its TTL, is [`Error::SessionInterrupted`] and is never
//! resurrected); `load` is `GET`, `delete` is `DEL`, `exists` is `EXISTS`. A merging save
//! (`save_changes`) reads, applies the request's changes and writes back with a
//! compare-and-set script, starting over when another write came first, so concurrent
//! requests keep each other's changes. A load hands out the value it read as the
//! session's version, so a save nothing raced (`save_changes_from`) is that same script
//! run once with the request's data: one round trip, no second read or decode.
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

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult,
    Script, Value,
};
use time::OffsetDateTime;

use super::{plausible_key, SessionCache, ENGINE};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Changes, LoadedSession, Saved, SessionData, SessionEngine, Version};
use crate::error::{redact_url, Error, LogId, Result};
use sessio_django::codec::StoreCodec;

/// How many fresh keys `create` tries before giving up (each try is a round trip).
const CREATE_ATTEMPTS: u32 = 10;
/// The longest TTL set, far beyond any real session (Redis refuses TTLs that overflow).
const MAX_TTL_SECS: i64 = 100 * 365 * 24 * 3600;
/// Retries within one reconnection. None: while the server is down, each command makes
/// one connection attempt and fails at once (a quick 503 rather than a request held until
/// the timeout), and the first command after the server is back reconnects.
const RECONNECT_RETRIES: usize = 0;

/// Sessions in Redis or a Redis Cluster.
///
/// Cheap to share: every call clones a handle to the one multiplexed connection.
pub struct RedisCacheEngine {
    conn: Conn,
    /// The URL with any password hidden, for messages.
    url: String,
    prefix: String,
    /// Not compressed: no Django reads these values (its cache backend pickles), and for
    /// session-sized data zlib costs more CPU than the bytes it saves are worth (it was
    /// more than half of the encoding time of a `write` request). Compressed values from
    /// earlier versions still load.
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

/// Compare-and-set for `save_changes` and `save_changes_from`, for one key or many in
/// order: `KEYS[i]` becomes its `new` (with TTL `ttl`; it is deleted when `new` is empty)
/// only if it still holds its `old`. `ARGV` holds `old`, `new` and `ttl` for each key.
/// Returns one result per key: 1 when swapped, 0 when the value changed meanwhile, -1
/// when the key is gone.
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
    if new == '' then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], new, 'EX', ttl)
    end
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

impl fmt::Debug for RedisCacheEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheEngine")
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

impl RedisCacheEngine {
    /// Connects to the Redis server or cluster that `config.cache_url()` names.
    ///
    /// Fails, naming the URL (without its password), when the server cannot be reached
    /// within `store_timeout`: a misconfigured or missing cache is reported at start-up,
    /// not on the first request.
    pub async fn open(config: &Config) -> Result<Self> {
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
            codec: config.store_codec().without_compression(),
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

    /// The stored value of `key` and its session; `None` when there is no live session.
    /// A value that does not verify is an empty session (and is replaced by the next write).
    async fn get(&self, what: &str, key: &str) -> Result<Option<(String, LoadedSession)>> {
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
        let decoded = self.codec.decode_or_empty(Some(&value), &LogId(key));
        if let Some(signed_at) = decoded.signed_at {
            // Redis's TTL runs on the server's clock; this check applies the configured
            // one as well (it matters when that clock is not the system's, or is ahead).
            let saved = OffsetDateTime::from_unix_timestamp(signed_at)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let expires = crate::expiry::date(Some(&decoded.data), saved, self.cookie_age);
            if expires <= self.clock.now() {
                return Ok(None);
            }
        }
        let session = LoadedSession {
            data: decoded.data,
            stale_key: decoded.stale_key,
            version: None,
        };
        Ok(Some((value, session)))
    }

    fn encode(&self, data: &SessionData, now: OffsetDateTime) -> String {
        self.codec.encode(data, now.unix_timestamp())
    }

    /// As `encode`, keeping a reference to `data` in the signer's memory, not a copy.
    fn encode_shared(&self, data: &Arc<SessionData>, now: OffsetDateTime) -> String {
        self.codec.encode_shared(data, now.unix_timestamp())
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
    /// The value and TTL a save stores; an empty value means the session was saved as
    /// already expired, so it ends now (the script deletes it).
    fn encode_for_save(&self, data: &Arc<SessionData>, expires: OffsetDateTime) -> (String, i64) {
        let now = self.clock.now();
        if expires > now {
            (self.encode_shared(data, now), ttl_secs(expires, now))
        } else {
            (String::new(), 1)
        }
    }

    /// Runs the compare-and-set script: `key` becomes `new` only if it still holds `old`.
    async fn swap(&self, key: &str, old: &str, new: &str, ttl: i64) -> Result<Swap> {
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
            1 => Swap::Done,
            -1 => Swap::Gone,
            _ => Swap::Changed,
        })
    }

    /// Optimistic merge: read, apply, and write only if the value is still the one read
    /// (the compare-and-set script, atomic on the server); a concurrent write makes it
    /// start over with that write's result. Gives up at `deadline`. Returns the merged
    /// data and the value stored (empty when saved as already expired).
    async fn merge(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
        deadline: tokio::time::Instant,
    ) -> Result<(SessionData, String)> {
        loop {
            let Some((old, session)) = self.get("merging a session", key).await? else {
                // Deleted meanwhile (a logout, its TTL): never resurrect it.
                return Err(Error::SessionInterrupted);
            };
            let mut data = Arc::unwrap_or_clone(session.data);
            changes.apply(&mut data);
            let data = Arc::new(data);
            let (new, ttl) = self.encode_for_save(&data, expires);
            match self.swap(key, &old, &new, ttl).await? {
                Swap::Done => return Ok((Arc::unwrap_or_clone(data), new)),
                Swap::Gone => return Err(Error::SessionInterrupted),
                Swap::Changed if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Store {
                        engine: ENGINE,
                        message: format!(
                            "could not merge a session on Redis at {} within {:?}: \
                             it kept changing under concurrent writes",
                            self.url, self.timeout
                        ),
                        source: None,
                    })
                }
                // Lost the race: let the winner's neighbours through, then retry.
                Swap::Changed => tokio::task::yield_now().await,
            }
        }
    }
}

/// What the compare-and-set script did.
enum Swap {
    /// The value was still the expected one and is replaced (or deleted).
    Done,
    /// Another write changed the value first.
    Changed,
    /// The key is gone (deleted, or its TTL ran out).
    Gone,
}

/// The version of a value just stored; none for a session that ended (deleted).
fn stored_version(value: String) -> Option<Version> {
    (!value.is_empty()).then(|| Version::stored(value))
}

/// Whole seconds from `now` until `expires`, rounded up, at least one.
fn ttl_secs(expires: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let secs = (expires - now).as_seconds_f64().ceil();
    (secs as i64).clamp(1, MAX_TTL_SECS)
}

#[async_trait]
impl SessionEngine for RedisCacheEngine {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn is_client_side(&self) -> bool {
        false
    }

    async fn load(&self, key: &str) -> Result<Option<SessionData>> {
        Ok(self
            .load_session(key)
            .await?
            .map(|s| Arc::unwrap_or_clone(s.data)))
    }

    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        if !plausible_key(key) {
            return Ok(None);
        }
        // The value as read is the version: a save from it is one compare-and-set.
        Ok(self
            .get("loading a session", key)
            .await?
            .map(|(value, mut session)| {
                session.version = Some(Version::stored(value));
                session
            }))
    }

    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let now = self.clock.now();
        if expires <= now {
            // Already over: nothing to keep (Django's cache backend adds and drops it).
            return crate::key::new_session_key();
        }
        let value = self.encode(data, now);
        let ttl = ttl_secs(expires, now);
        for _ in 0..CREATE_ATTEMPTS {
            let key = crate::key::new_session_key()?;
            if self
                .set("creating a session", "NX", &key, &value, ttl)
                .await?
            {
                return Ok(key);
            }
        }
        Err(Error::KeyCreation {
            attempts: CREATE_ATTEMPTS,
        })
    }

    async fn insert(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool> {
        if !plausible_key(key) {
            return Err(Error::Config(format!(
                "`{key}` is not a valid session key for the Redis cache"
            )));
        }
        let now = self.clock.now();
        if expires <= now {
            return Ok(true);
        }
        let value = self.encode(data, now);
        self.set(
            "creating a session",
            "NX",
            key,
            &value,
            ttl_secs(expires, now),
        )
        .await
    }

    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        if !plausible_key(key) {
            return Err(Error::SessionInterrupted);
        }
        let now = self.clock.now();
        let stored = if expires <= now {
            // Saved as already expired: it ends now, if it was still there.
            let deleted: i64 = self
                .run(
                    "saving an expired session",
                    redis::cmd("DEL").arg(self.redis_key(key)),
                )
                .await?;
            deleted > 0
        } else {
            let value = self.encode(data, now);
            self.set(
                "saving a session",
                "XX",
                key,
                &value,
                ttl_secs(expires, now),
            )
            .await?
        };
        if !stored {
            // Deleted meanwhile (a logout, its TTL): never resurrect it.
            return Err(Error::SessionInterrupted);
        }
        Ok(key.to_owned())
    }

    async fn save_changes(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(String, SessionData)> {
        if !plausible_key(key) {
            return Err(Error::SessionInterrupted);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let (data, _) = self.merge(key, changes, expires, deadline).await?;
        Ok((key.to_owned(), data))
    }

    /// One compare-and-set from the value the request read; only when another write came
    /// first does it fall back to the merge loop (and a key that is gone stays gone).
    async fn save_changes_from(
        &self,
        key: &str,
        base: &Version,
        data: &Arc<SessionData>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<Saved> {
        if !plausible_key(key) {
            return Err(Error::SessionInterrupted);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        if let Some(old) = base.as_stored() {
            let (new, ttl) = self.encode_for_save(data, expires);
            match self.swap(key, old, &new, ttl).await? {
                Swap::Done => {
                    return Ok(Saved {
                        cookie: key.to_owned(),
                        merged: None,
                        version: stored_version(new),
                    })
                }
                Swap::Gone => return Err(Error::SessionInterrupted),
                Swap::Changed => {}
            }
        }
        let (merged, new) = self.merge(key, changes, expires, deadline).await?;
        Ok(Saved {
            cookie: key.to_owned(),
            merged: Some(merged),
            version: stored_version(new),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        if plausible_key(key) {
            let _: i64 = self
                .run(
                    "deleting a session",
                    redis::cmd("DEL").arg(self.redis_key(key)),
                )
                .await?;
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        if !plausible_key(key) {
            return Ok(false);
        }
        self.run(
            "checking whether a session exists",
            redis::cmd("EXISTS").arg(self.redis_key(key)),
        )
        .await
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        // Redis drops a key when its TTL runs out: no expired session is ever left.
        Ok(Some(0))
    }

    async fn clear_expired_batch(&self, _limit: usize) -> Result<u64> {
        Ok(0)
    }
}

#[async_trait]
impl SessionCache for RedisCacheEngine {
    async fn add(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool> {
        let now = self.clock.now();
        if !plausible_key(key) || expires <= now {
            return Ok(false);
        }
        let value = self.encode(data, now);
        self.set(
            "caching a session",
            "NX",
            key,
            &value,
            ttl_secs(expires, now),
        )
        .await
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
