//! Webhook notifications against a real HTTP server on 127.0.0.1: each report delivered once
//! across a receiver outage (5xx), a 4xx, a receiver that does not answer, and a daemon
//! restart; the URL's secret never in the log; Slack's shape.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::daemon::{drop_file, wait_until, Daemon, CONFIG, WAIT};
use crate::harness::{votes, Env, Run};

/// How the receiver answers the next request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Code(u16),
    /// Reads the request, then keeps the connection without a word until the client gives up.
    Silence,
}

/// One request the receiver read, and how it answered.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    idempotency_key: String,
    body: serde_json::Value,
    answer: Answer,
}

/// An HTTP server on 127.0.0.1 that answers from a script (then `then` for ever) and keeps
/// every request.
struct Receiver {
    addr: String,
    script: Arc<Mutex<(Vec<Answer>, Answer)>>,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(then: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let script = Arc::new(Mutex::new((Vec::new(), then)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (script.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, r) = (s.clone(), r.clone());
                std::thread::spawn(move || serve(conn, &s, &r));
            }
        });
        Receiver { addr, script, seen }
    }

    /// Answers these first, then `then` for ever.
    fn script(&self, first: &[Answer], then: Answer) {
        let mut s = self.script.lock().unwrap();
        s.0 = first.iter().rev().copied().collect();
        s.1 = then;
    }

    fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// The documents it accepted (answered 2xx).
    fn accepted(&self) -> Vec<Request> {
        self.seen()
            .into_iter()
            .filter(|r| matches!(r.answer, Answer::Code(c) if (200..300).contains(&c)))
            .collect()
    }
}

fn serve(
    conn: std::net::TcpStream,
    script: &Mutex<(Vec<Answer>, Answer)>,
    seen: &Mutex<Vec<Request>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let (mut length, mut key) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("idempotency-key:") {
            key = h["idempotency-key:".len()..].trim().to_string();
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let answer = {
        let mut s = script.lock().unwrap();
        s.0.pop().unwrap_or(s.1)
    };
    seen.lock().unwrap().push(Request {
        path,
        idempotency_key: key,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        answer,
    });
    let mut conn = conn;
    match answer {
        Answer::Code(code) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        Answer::Silence => std::thread::sleep(Duration::from_secs(5)),
    }
}

const SECRET: &str = "T0K3N-s3cr3t";

fn start(env: &Env, receiver: &Receiver, format: &str) -> Daemon {
    env.write(
        "votewatch.toml",
        format!(
            "{CONFIG}\n[report]\nretry_initial_ms = 50\nretry_max_ms = 300\n\
             [report.webhook]\nenabled = true\nformat = \"{format}\"\ntimeout_secs = 1\n\
             console_url = \"https://votewatch.example/\"\n"
        ),
    );
    let url = format!("http://{}/hook/{SECRET}", receiver.addr);
    Daemon::start_with(env, &[("VOTEWATCH_WEBHOOK_URL", &url)])
}

#[test]
fn each_report_reaches_the_webhook_once_across_an_outage_and_a_restart() {
    let env = Env::new();
    let receiver = Receiver::start(Answer::Code(503));
    let d = start(&env, &receiver, "json");
    drop_file(&env, "bad.jsonl", "nonsense\nmore nonsense\n");
    // The outage: tried again and again, never accepted.
    assert!(
        wait_until(WAIT, || receiver.seen().len() >= 3),
        "{:?}\n{}",
        receiver.seen(),
        d.log()
    );
    let log = d.log();
    assert_eq!(d.stop().0, 0);
    assert!(
        !log.contains(SECRET),
        "the URL's secret is in the log:\n{log}"
    );
    assert!(log.contains("the webhook answered HTTP 503"), "{log}");
    assert!(receiver.accepted().is_empty());

    // After the restart: a 404, then no answer at all, then the receiver is back.
    receiver.script(&[Answer::Code(404), Answer::Silence], Answer::Code(200));
    let d = start(&env, &receiver, "json");
    assert!(
        wait_until(WAIT, || receiver.accepted().len() == 1),
        "{:?}\n{}",
        receiver.seen(),
        d.log()
    );
    // A file loaded whole notifies nobody; one with rejects does, after it.
    drop_file(&env, "good.jsonl", votes(1, 5));
    assert!(
        wait_until(WAIT, || crate::daemon::names(&env.path("processed"))
            .contains(&"good.jsonl".to_string())),
        "{}",
        d.log()
    );
    drop_file(&env, "partial.jsonl", format!("{}\nbroken", votes(100, 3)));
    assert!(
        wait_until(WAIT, || receiver.accepted().len() == 2),
        "{:?}\n{}",
        receiver.seen(),
        d.log()
    );
    let log = d.log();
    assert_eq!(d.stop().0, 0);
    assert!(!log.contains(SECRET), "{log}");
    assert!(log.contains("did not answer in time"), "{log}");
    let accepted = receiver.accepted();
    let files: Vec<&str> = accepted
        .iter()
        .map(|r| r.body["files"][0]["file"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(files, ["bad.jsonl", "partial.jsonl"]);
    for r in &accepted {
        assert_eq!(r.path, format!("/hook/{SECRET}"));
        assert_eq!(r.body["source"], "votewatch");
        assert_eq!(r.idempotency_key, r.body["id"].as_str().unwrap());
        // Every attempt of a document carried the same id: the receiver can tell repeats.
        let attempts = receiver
            .seen()
            .iter()
            .filter(|s| s.idempotency_key == r.idempotency_key)
            .count();
        assert!(attempts >= 1);
    }
    assert_eq!(accepted[0].body["files"][0]["status"], "rejected");
    assert_eq!(
        accepted[1].body["files"][0]["link"],
        format!(
            "https://votewatch.example/loads/{}",
            accepted[1].body["files"][0]["ledger_id"]
        )
    );
    // Nothing is left to send.
    assert!(crate::daemon::names(&env.path("outbox/webhook"))
        .iter()
        .all(|n| n.starts_with('.')));
}

#[test]
fn slack_gets_text_and_blocks_with_names_escaped() {
    let env = Env::new();
    let receiver = Receiver::start(Answer::Code(200));
    let d = start(&env, &receiver, "slack");
    drop_file(&env, "<!channel>.jsonl", "nonsense\n");
    assert!(
        wait_until(WAIT, || receiver.accepted().len() == 1),
        "{:?}\n{}",
        receiver.seen(),
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    let doc = &receiver.accepted()[0].body;
    let text = doc["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(doc["text"].as_str().unwrap().contains("rejected"), "{doc}");
    assert!(text.contains("&lt;!channel&gt;.jsonl"), "{text}");
    assert!(!text.contains("<!channel>"), "{text}");
    assert_eq!(doc["blocks"][0]["type"], "section");
}

#[test]
fn check_config_says_when_the_webhook_has_no_url() {
    let env = Env::new();
    env.write(
        "hook.toml",
        "[report.webhook]\nenabled = true\nurl_env = \"VOTEWATCH_TEST_NO_SUCH_URL\"\n",
    );
    let r = env.run(&["check-config", "--config", "hook.toml"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout.contains("report.webhook") && r.stdout.contains("no URL was found"),
        "{}",
        r.stdout
    );
    let r = env
        .command()
        .args(["check-config", "--config", "hook.toml"])
        .env("VOTEWATCH_TEST_NO_SUCH_URL", "http://hooks.example.com/x")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("must be https://"), "{out}");
    assert!(
        !out.contains("hooks.example.com"),
        "the URL is never printed: {out}"
    );
}

#[test]
fn ingest_with_report_delivers_the_webhook_too() {
    let env = Env::new();
    let receiver = Receiver::start(Answer::Code(200));
    env.write(
        "hook.toml",
        "[report.webhook]\nenabled = true\nurl_env = \"VW_TEST_HOOK\"\n",
    );
    env.write("bad.jsonl", "nonsense\n");
    let r = Run::from(
        env.command()
            .args(["ingest", "--config", "hook.toml", "--report", "bad.jsonl"])
            .env(
                "VW_TEST_HOOK",
                format!("http://{}/hook/{SECRET}", receiver.addr),
            )
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("webhook: 1 delivered, 0 waiting"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET));
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].body["files"][0]["file"], "bad.jsonl");
}
