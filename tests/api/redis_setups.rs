//! Redis as people run it, against the real `redis-server`: `rediss://` verified against a CA
//! file (and a client certificate where the server asks for one), an ACL user and password
//! from files, Sentinel through a failover, and `/ready` reporting the store. A wrong CA or
//! password fails closed (401 at `/oauth2/auth`, a log line saying why), never a 500.

use std::path::Path;
use std::time::Duration;

use crate::helpers::forge::{spawn_forge, Forge};
use crate::helpers::redis::{
    connect, eventually, fixture, spawn_redis, spawn_redis_at, spawn_redis_tls, spawn_redis_with,
    spawn_sentinel, spawn_sentinel_tls, spawn_sentinel_with, until_store_connected, Redis,
};
use crate::helpers::{
    env_with, free_port, spawn_authgate, spawn_in_process, AuthgateProcess, Client, ConfigDir,
    InProcess,
};
use crate::redis_store::{auth, config_with, login, COOKIE, HOST};

/// How long a store may take to connect, or to notice it cannot.
const CONNECT: Duration = Duration::from_secs(15);

/// `GET /ready<query>`: status and body.
async fn ready(port: u16, query: &str) -> (u16, String) {
    let r = Client::new()
        .get(&format!("http://127.0.0.1:{port}/ready{query}"), &[])
        .await;
    (r.status, r.body)
}

/// authgate in this process with `[redis]` = `redis_table`, `$REDIS_URL` = `url`, and its
/// config directory.
async fn spawn_app(forge: &Forge, redis_table: &str, url: &str) -> (InProcess, ConfigDir) {
    let config = config_with(&forge.issuer, &format!("[redis]\n{redis_table}"));
    let app = spawn_in_process(
        &config,
        env_with(&[("MCD_SECRET", "s3cret"), ("REDIS_URL", url)]),
    )
    .await;
    (app, config)
}

/// The authgate binary with `[redis]` = `redis_table`, `$REDIS_URL` = `url` (its log is
/// read), and its config directory.
fn spawn_binary(
    forge: &Forge,
    redis_table: &str,
    url: &str,
    name: &str,
) -> (AuthgateProcess, ConfigDir) {
    let config = config_with(&forge.issuer, &format!("[redis]\n{redis_table}"));
    let p = spawn_authgate(
        &config,
        &[("MCD_SECRET", "s3cret"), ("REDIS_URL", url)],
        name,
    );
    (p, config)
}

/// The log line saying why the store cannot connect.
async fn refusal_line(p: &AuthgateProcess) -> String {
    eventually(
        CONNECT,
        "a log line says why Redis is unreachable",
        || async {
            p.log_text()
                .lines()
                .find(|l| l.contains("cannot connect to Redis"))
                .map(str::to_string)
        },
    )
    .await
}

/// A whole login: the session cookie as the `Cookie` header value.
async fn signed_in(forge: &Forge, app: &InProcess) -> String {
    let mut browser = Client::new();
    let r = login(forge, app, &mut browser, "/app").await;
    assert_eq!(r.status, 302, "{}", r.body);
    format!("{COOKIE}={}", browser.cookie(HOST, COOKIE).unwrap())
}

/// The session keys in the Redis at `port`, asked with the test's own client.
async fn session_keys(c: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    redis::cmd("KEYS")
        .arg("authgate:session:*")
        .query_async(c)
        .await
        .unwrap_or_default()
}

fn toml_path(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_kept_over_tls_verified_against_the_ca_file_and_a_wrong_ca_fails_closed() {
    let forge = spawn_forge().await;
    let redis = spawn_redis_tls(false);
    let ca = fixture("redis-ca.pem");
    let table = format!(
        "url_env = \"REDIS_URL\"\nca_file = \"{}\"\n",
        toml_path(&ca)
    );
    let (app, _app_config) = spawn_app(&forge, &table, &redis.url()).await;
    until_store_connected(app.port).await;
    let cookie = signed_in(&forge, &app).await;
    let (status, user, _) = auth(app.port, &cookie).await;
    assert_eq!((status, user.as_deref()), (202, Some("alice")));

    // The record is in the TLS Redis, as the test's own TLS client sees it.
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(&ca).unwrap()),
    };
    let mut c = redis::Client::build_with_tls(redis.url(), certs)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    assert_eq!(session_keys(&mut c).await.len(), 1);

    // Another CA: the server's certificate is refused, the session fails closed.
    let other_ca = fixture("redis-other-ca.pem");
    let table = format!(
        "url_env = \"REDIS_URL\"\nca_file = \"{}\"\n",
        toml_path(&other_ca)
    );
    let (wrong, _wrong_config) = spawn_binary(&forge, &table, &redis.url(), "redis-wrong-ca");
    let line = refusal_line(&wrong).await;
    assert!(line.contains("certificate"), "{line}");
    let (status, user, _) = auth(wrong.port, &cookie).await;
    assert_eq!((status, user), (401, None));
    let (status, body) = ready(wrong.port, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("redis: not connected"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_asking_for_a_client_certificate_gets_the_configured_one() {
    let forge = spawn_forge().await;
    let redis = spawn_redis_tls(true);
    let ca = toml_path(&fixture("redis-ca.pem"));
    let table = format!(
        "url_env = \"REDIS_URL\"\nca_file = \"{ca}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        toml_path(&fixture("redis-server.pem")),
        toml_path(&fixture("redis-server-key.pem")),
    );
    let (app, _app_config) = spawn_app(&forge, &table, &redis.url()).await;
    until_store_connected(app.port).await;
    let cookie = signed_in(&forge, &app).await;
    let (status, user, _) = auth(app.port, &cookie).await;
    assert_eq!((status, user.as_deref()), (202, Some("alice")));

    // Without the client certificate the server ends the handshake.
    let table = format!("url_env = \"REDIS_URL\"\nca_file = \"{ca}\"\n");
    let (without, _without_config) =
        spawn_binary(&forge, &table, &redis.url(), "redis-no-client-cert");
    refusal_line(&without).await;
    let (status, _, _) = auth(without.port, &cookie).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_and_password_from_a_file_reach_redis_and_a_wrong_password_fails_closed() {
    let forge = spawn_forge().await;
    let port = free_port();
    let _redis = spawn_redis_with(
        port,
        &[
            "--requirepass",
            "default-pw",
            "--user",
            "authgate",
            "on",
            ">acl-pw",
            "~authgate:*",
            "+@all",
        ],
    );
    let url = format!("redis://127.0.0.1:{port}");
    let secrets = tempfile::tempdir().unwrap();
    let good = secrets.path().join("password");
    std::fs::write(&good, "acl-pw\n").unwrap();
    let table = format!(
        "url_env = \"REDIS_URL\"\nusername = \"authgate\"\npassword_file = \"{}\"\n",
        toml_path(&good)
    );
    let (app, _app_config) = spawn_app(&forge, &table, &url).await;
    until_store_connected(app.port).await;
    let cookie = signed_in(&forge, &app).await;
    let (status, user, _) = auth(app.port, &cookie).await;
    assert_eq!((status, user.as_deref()), (202, Some("alice")));
    let mut admin = connect(port, Some("default-pw")).await;
    assert_eq!(session_keys(&mut admin).await.len(), 1);

    // The URL's own password still works (the default user's here).
    let (in_url, _in_url_config) = spawn_app(
        &forge,
        "url_env = \"REDIS_URL\"\n",
        &format!("redis://:default-pw@127.0.0.1:{port}"),
    )
    .await;
    until_store_connected(in_url.port).await;
    let (status, _, _) = auth(in_url.port, &cookie).await;
    assert_eq!(status, 202);

    // A wrong password: refused by Redis (WRONGPASS), the session fails closed, the log says why.
    let bad = secrets.path().join("wrong");
    std::fs::write(&bad, "not-the-password\n").unwrap();
    let table = format!(
        "url_env = \"REDIS_URL\"\nusername = \"authgate\"\npassword_file = \"{}\"\n",
        toml_path(&bad)
    );
    let (wrong, _wrong_config) = spawn_binary(&forge, &table, &url, "redis-wrong-password");
    let line = refusal_line(&wrong).await;
    assert!(line.contains("Password authentication failed"), "{line}");
    assert!(!line.contains("not-the-password"), "{line}");
    let (status, _, _) = auth(wrong.port, &cookie).await;
    assert_eq!(status, 401);
}

/// The master the sentinel at `sentinel` names for `mymaster`: its port.
async fn master_port(sentinel: &Redis) -> Option<u16> {
    let mut c = connect(sentinel.port, None).await;
    let addr: Vec<String> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg("mymaster")
        .query_async(&mut c)
        .await
        .ok()?;
    addr.get(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_go_to_the_master_the_sentinels_name_and_survive_a_failover() {
    let forge = spawn_forge().await;
    let mut master = spawn_redis();
    let replica = spawn_redis_with(
        free_port(),
        &["--replicaof", "127.0.0.1", &master.port.to_string()],
    );
    let on_replica = connect(replica.port, None).await;
    eventually(CONNECT, "the replica syncs", || {
        let mut c = on_replica.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut c)
                .await
                .ok()?;
            info.contains("master_link_status:up").then_some(())
        }
    })
    .await;
    let sentinel = spawn_sentinel("mymaster", master.port);
    eventually(CONNECT, "the sentinel knows the replica", || async {
        let mut c = connect(sentinel.port, None).await;
        let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
            .arg("REPLICAS")
            .arg("mymaster")
            .query_async(&mut c)
            .await
            .ok()?;
        (!replicas.is_empty()).then_some(())
    })
    .await;

    let table = format!(
        "sentinels = [\"127.0.0.1:{}\"]\nsentinel_master = \"mymaster\"\n",
        sentinel.port
    );
    let (app, _app_config) = spawn_app(&forge, &table, "").await;
    until_store_connected(app.port).await;
    let cookie = signed_in(&forge, &app).await;
    let (status, user, _) = auth(app.port, &cookie).await;
    assert_eq!((status, user.as_deref()), (202, Some("alice")));
    let mut on_master = connect(master.port, None).await;
    assert_eq!(session_keys(&mut on_master).await.len(), 1);
    eventually(CONNECT, "the session reaches the replica", || {
        let mut c = on_replica.clone();
        async move { (session_keys(&mut c).await.len() == 1).then_some(()) }
    })
    .await;

    // The master goes; the sentinel promotes the replica.
    master.stop();
    eventually(
        Duration::from_secs(30),
        "the sentinel promotes the replica",
        || async {
            master_port(&sentinel)
                .await
                .filter(|p| *p == replica.port)
                .map(|_| ())
        },
    )
    .await;
    // New sessions are written to the new master, old ones read from it.
    let second = eventually(CONNECT, "a login after the failover", || async {
        let mut browser = Client::new();
        let r = login(&forge, &app, &mut browser, "/app").await;
        (r.status == 302).then(|| format!("{COOKIE}={}", browser.cookie(HOST, COOKIE).unwrap()))
    })
    .await;
    // The sentinel closed the clients of the promoted replica: a new connection.
    let mut on_new_master = connect(replica.port, None).await;
    assert_eq!(session_keys(&mut on_new_master).await.len(), 2);
    for c in [&cookie, &second] {
        let (status, user, _) = auth(app.port, c).await;
        assert_eq!((status, user.as_deref()), (202, Some("alice")));
    }
    let (status, body) = ready(app.port, "?store=required").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sentinel_the_password_goes_to_the_master_and_the_sentinel_password_to_sentinels() {
    let forge = spawn_forge().await;
    let master = spawn_redis_with(free_port(), &["--requirepass", "master-pw"]);
    let sentinel = spawn_sentinel_with(
        "mymaster",
        master.port,
        "sentinel auth-pass mymaster master-pw\nrequirepass sentinel-pw",
    );
    let secrets = tempfile::tempdir().unwrap();
    let (password, sentinel_password) = (
        secrets.path().join("password"),
        secrets.path().join("sentinel-password"),
    );
    std::fs::write(&password, "master-pw\n").unwrap();
    std::fs::write(&sentinel_password, "sentinel-pw\n").unwrap();
    let table = format!(
        "sentinels = [\"127.0.0.1:{}\"]\nsentinel_master = \"mymaster\"\n\
         password_file = \"{}\"\nsentinel_password_file = \"{}\"\n",
        sentinel.port,
        toml_path(&password),
        toml_path(&sentinel_password)
    );
    let (app, _app_config) = spawn_app(&forge, &table, "").await;
    until_store_connected(app.port).await;
    let cookie = signed_in(&forge, &app).await;
    let (status, user, _) = auth(app.port, &cookie).await;
    assert_eq!((status, user.as_deref()), (202, Some("alice")));
    let mut on_master = connect(master.port, Some("master-pw")).await;
    assert_eq!(session_keys(&mut on_master).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sentinel_and_tls_sentinels_and_master_are_verified_against_the_ca_file() {
    let forge = spawn_forge().await;
    let master = spawn_redis_tls(false);
    let sentinel = spawn_sentinel_tls("mymaster", master.port);
    let table = |ca: &str| {
        format!(
            "sentinels = [\"127.0.0.1:{}\"]\nsentinel_master = \"mymaster\"\ntls = true\n\
             ca_file = \"{}\"\n",
            sentinel.port,
            toml_path(&fixture(ca))
        )
    };
    let (app, _app_config) = spawn_app(&forge, &table("redis-ca.pem"), "").await;
    until_store_connected(app.port).await;
    let cookie = signed_in(&forge, &app).await;
    let (status, user, _) = auth(app.port, &cookie).await;
    assert_eq!((status, user.as_deref()), (202, Some("alice")));

    let (wrong, _wrong_config) = spawn_binary(
        &forge,
        &table("redis-other-ca.pem"),
        "",
        "redis-sentinel-wrong-ca",
    );
    let line = refusal_line(&wrong).await;
    assert!(line.contains("certificate"), "{line}");
    let (status, _, _) = auth(wrong.port, &cookie).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reports_the_store_down_then_up() {
    let forge = spawn_forge().await;
    let mut redis = spawn_redis();
    let port = redis.port;
    let (app, _app_config) = spawn_app(&forge, "url_env = \"REDIS_URL\"\n", &redis.url()).await;
    until_store_connected(app.port).await;
    assert_eq!(ready(app.port, "?store=required").await.0, 200);
    let metrics = Client::new()
        .get(&format!("http://127.0.0.1:{}/metrics", app.port), &[])
        .await;
    assert!(
        metrics
            .body
            .contains("authgate_redis_connected{mode=\"url\"} 1"),
        "{}",
        metrics.body
    );

    redis.stop();
    let body = eventually(
        CONNECT,
        "/ready?store=required says the store is down",
        || async {
            let (status, body) = ready(app.port, "?store=required").await;
            (status == 503).then_some(body)
        },
    )
    .await;
    assert!(
        body.starts_with("not ready") && body.contains("redis: not connected, sessions of mcd"),
        "{body}"
    );
    // Plain /ready keeps the replica in the Service, saying what is down.
    let (status, body) = ready(app.port, "").await;
    assert_eq!(status, 200);
    assert!(body.contains("redis: not connected"), "{body}");

    let _redis = spawn_redis_at(port);
    eventually(
        CONNECT,
        "/ready?store=required says the store is back",
        || async {
            let (status, body) = ready(app.port, "?store=required").await;
            (status == 200 && body.contains("redis: connected")).then_some(())
        },
    )
    .await;
}
