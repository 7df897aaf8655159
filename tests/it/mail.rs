//! E-mailed reports: a real SMTP conversation over 127.0.0.1, STARTTLS with a private CA, an
//! outbox that survives a mail server that is down and a daemon restart, and .eml files.

use std::fs;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};

use crate::daemon::{drop_file, wait_until, Daemon};
use crate::harness::{votes, BoundedOutput, Env};
use crate::smtp::{free_port, test_pki, Fault, SmtpServer};

const WAIT: Duration = Duration::from_secs(30);

fn smtp_config(port: u16, extra_smtp: &str) -> String {
    format!(
        r#"
[warehouse]
path = "warehouse.db"
[daemon]
settle_ms = 100
rescan_secs = 1
[report]
from = "votewatch <vw@example.com>"
to = ["ops@example.com", "analysts@example.com"]
transport = "smtp"
retry_initial_ms = 100
retry_max_ms = 400
[report.smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
{extra_smtp}
"#
    )
}

struct Mail {
    subject: String,
    text: String,
    html: String,
    message_id: String,
    content_type: String,
}

fn parse(raw: &[u8]) -> Mail {
    let m = MessageParser::default()
        .parse(raw)
        .expect("a parseable message");
    let ct = m.content_type().expect("a content type");
    Mail {
        subject: m.subject().unwrap_or_default().to_string(),
        text: m.body_text(0).unwrap_or_default().into_owned(),
        html: m.body_html(0).unwrap_or_default().into_owned(),
        message_id: m.message_id().unwrap_or_default().to_string(),
        content_type: format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()),
    }
}

fn sorted_subjects(server: &SmtpServer) -> Vec<String> {
    let mut subjects: Vec<String> = server
        .received()
        .iter()
        .map(|r| parse(&r.data).subject)
        .collect();
    subjects.sort();
    subjects
}

fn outbox_len(env: &Env) -> usize {
    fs::read_dir(env.path("outbox"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn the_report_reaches_a_real_smtp_server_with_both_parts_and_safe_names() {
    let env = Env::new();
    let server = SmtpServer::start(0, None);
    env.write("votewatch.toml", smtp_config(server.port, ""));
    let hostile = "a \"<b>\" é\nx.jsonl";
    env.write(hostile, format!("{}\nnot json", votes(1, 5)));
    env.write("good.jsonl", votes(100, 3));
    let run = env.run(&[
        "ingest",
        "--config",
        "votewatch.toml",
        "--report",
        hostile,
        "good.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("report: 1 queued, 1 delivered, 0 waiting"),
        "{}",
        run.stdout
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "vw@example.com");
    assert_eq!(got[0].to, ["ops@example.com", "analysts@example.com"]);
    let m = parse(&got[0].data);
    assert_eq!(m.subject, "votewatch: 2 files — 1 loaded, 1 partial");
    assert_eq!(m.content_type, "multipart/alternative");
    // The text part: one block per file, counts, the first reject and how to see the rest.
    assert!(m.text.contains("a \"<b>\" é?x.jsonl"), "{}", m.text);
    assert!(m.text.contains("status partial (ledger 1); read 6, inserted 5, duplicates 0, already in warehouse 0, conflicting 0, rejected 1"), "{}", m.text);
    assert!(m.text.contains("reject line 6: not JSON"), "{}", m.text);
    assert!(m.text.contains("WHERE file_id = 1"), "{}", m.text);
    assert!(
        m.text
            .contains("status loaded (ledger 2); read 3, inserted 3"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("Outlier weeks after this batch:"),
        "{}",
        m.text
    );
    // The HTML part escapes the name.
    assert!(
        m.html.contains("a &quot;&lt;b&gt;&quot; é?x.jsonl")
            || m.html.contains("a \"&lt;b&gt;\" é?x.jsonl"),
        "{}",
        m.html
    );
    assert!(!m.html.contains("<b>\""), "{}", m.html);
    assert_eq!(outbox_len(&env), 0);
    // The raw header stays one header: the newline in the name cannot start a new one.
    let raw = String::from_utf8_lossy(&got[0].data);
    assert!(!raw.lines().any(|l| l.starts_with("x.jsonl")), "{raw}");
}

#[test]
fn per_file_mode_sends_one_message_per_file() {
    let env = Env::new();
    let server = SmtpServer::start(0, None);
    env.write(
        "votewatch.toml",
        smtp_config(server.port, "").replace(
            "transport = \"smtp\"",
            "transport = \"smtp\"\nmode = \"per_file\"",
        ),
    );
    env.write("a.jsonl", votes(1, 2));
    env.write("b.jsonl", "garbage");
    let run = env.run(&[
        "ingest",
        "--config",
        "votewatch.toml",
        "--report",
        "a.jsonl",
        "b.jsonl",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        sorted_subjects(&server),
        [
            "votewatch: a.jsonl — loaded",
            "votewatch: b.jsonl — rejected"
        ]
    );
}

#[test]
fn starttls_with_a_private_ca_and_a_password_that_is_never_shown() {
    let env = Env::new();
    let pki = test_pki();
    let server = SmtpServer::start(0, Some(pki.server.clone()));
    env.write("ca.pem", &pki.ca_pem);
    env.write(
        "votewatch.toml",
        smtp_config(
            server.port,
            "user = \"reports\"\npassword_env = \"TEST_SMTP_PASSWORD\"\nca_file = \"ca.pem\"",
        )
        .replace("tls = \"none\"", "tls = \"starttls\"")
        .replace("host = \"127.0.0.1\"", "host = \"localhost\""),
    );
    let secret = "s3cret-pa55";
    let out = env
        .command()
        .args(["send-test-email", "--config", "votewatch.toml"])
        .env("TEST_SMTP_PASSWORD", secret)
        .env("VOTEWATCH_LOG", "trace")
        .bounded_output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("sent a test message to ops@example.com, analysts@example.com"),
        "{stdout}"
    );
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the message went over the plain connection");
    assert_eq!(
        got[0].auth,
        Some(("reports".to_string(), secret.to_string()))
    );
    assert_eq!(parse(&got[0].data).subject, "votewatch: test message");

    // Without the CA the server is not trusted, and nothing is sent.
    env.write(
        "untrusted.toml",
        fs::read_to_string(env.path("votewatch.toml"))
            .unwrap()
            .replace("ca_file = \"ca.pem\"", ""),
    );
    let out = env
        .command()
        .args(["send-test-email", "--config", "untrusted.toml"])
        .env("TEST_SMTP_PASSWORD", secret)
        .bounded_output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("could not send through smtp localhost"));
    assert_eq!(server.received().len(), 1);
}

#[test]
fn smtp_down_the_outbox_grows_smtp_back_every_report_arrives() {
    let env = Env::new();
    let port = free_port();
    env.write("votewatch.toml", smtp_config(port, ""));
    let d = Daemon::start(&env);
    for i in 0..3 {
        drop_file(&env, &format!("f{i}.jsonl"), votes(1 + i * 10, 10));
        assert!(wait_until(WAIT, || crate::daemon::names(
            &env.path("processed")
        )
        .len()
            == i as usize + 1));
        assert!(
            wait_until(WAIT, || outbox_len(&env) == i as usize + 1),
            "{}",
            d.log()
        );
    }
    d.wait_log("report delivery failed", WAIT);
    // After repeated failures the log says the report is stuck; it stays in the outbox.
    d.wait_log("report still undelivered; it stays in the outbox", WAIT);
    assert_eq!(outbox_len(&env), 3);
    let server = SmtpServer::start(port, None);
    assert!(
        wait_until(WAIT, || server.received().len() == 3),
        "{}",
        d.log()
    );
    assert!(wait_until(WAIT, || outbox_len(&env) == 0));
    assert_eq!(
        sorted_subjects(&server),
        [
            "votewatch: f0.jsonl — loaded",
            "votewatch: f1.jsonl — loaded",
            "votewatch: f2.jsonl — loaded"
        ]
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 30);
}

/// Subjects in the order the server accepted them.
fn subjects(server: &SmtpServer) -> Vec<String> {
    server
        .received()
        .iter()
        .map(|r| parse(&r.data).subject)
        .collect()
}

/// Drops `name` with `n` votes from `first` and waits until its report is queued (the outbox
/// holds `queued` reports).
fn drop_and_queue(env: &Env, d: &Daemon, name: &str, first: i64, queued: usize) {
    drop_file(env, name, votes(first, 5));
    assert!(
        wait_until(WAIT, || outbox_len(env) == queued),
        "{}",
        d.log()
    );
}

/// Issue 17: reports queued while the mail server is down arrive in the order they were
/// queued, although each waited out its own retries, and also when some were queued before a
/// restart and the rest after it.
#[test]
fn reports_queued_during_an_outage_arrive_oldest_first_also_across_a_restart() {
    let env = Env::new();
    let port = free_port();
    env.write("votewatch.toml", smtp_config(port, ""));
    let d = Daemon::start(&env);
    for i in 0..3 {
        drop_and_queue(&env, &d, &format!("f{i}.jsonl"), 1 + i * 10, i as usize + 1);
        // The sender keeps failing meanwhile; its retries build up.
        let failures = d.log().matches("report delivery failed").count();
        assert!(wait_until(WAIT, || d
            .log()
            .matches("report delivery failed")
            .count()
            > failures));
    }
    assert_eq!(d.stop().0, 0);
    let d = Daemon::start(&env);
    for i in 3..5 {
        drop_and_queue(&env, &d, &format!("f{i}.jsonl"), 1 + i * 10, i as usize + 1);
    }
    d.wait_log("report delivery failed", WAIT);
    let server = SmtpServer::start(port, None);
    assert!(
        wait_until(WAIT, || server.received().len() == 5),
        "{}",
        d.log()
    );
    assert_eq!(
        subjects(&server),
        (0..5)
            .map(|i| format!("votewatch: f{i}.jsonl — loaded"))
            .collect::<Vec<_>>()
    );
    assert!(wait_until(WAIT, || outbox_len(&env) == 0));
    assert_eq!(d.stop().0, 0);
}

/// Issue 17: a server that answers a report's data with a temporary (451) or a permanent
/// (554) refusal, or drops the connection before answering, has not taken the report: it
/// stays in the outbox and is sent again, and each report arrives exactly once, in order.
#[test]
fn refusals_and_a_dropped_connection_after_data_still_deliver_each_report_once() {
    let env = Env::new();
    let server = SmtpServer::start(0, None);
    server.fail_next(&[
        Fault::Reply("451 4.3.0 try again later"),
        Fault::Reply("554 5.6.0 message refused"),
        Fault::Drop,
        Fault::Reply("452 4.3.1 out of room"),
    ]);
    env.write("votewatch.toml", smtp_config(server.port, ""));
    let d = Daemon::start(&env);
    for i in 0..3 {
        drop_file(&env, &format!("f{i}.jsonl"), votes(1 + i * 10, 5));
        assert!(wait_until(WAIT, || crate::daemon::names(
            &env.path("processed")
        )
        .len()
            == i as usize + 1));
    }
    assert!(
        wait_until(WAIT, || server.received().len() == 3
            && outbox_len(&env) == 0),
        "{}",
        d.log()
    );
    assert_eq!(server.faults_left(), 0);
    assert!(d.log().contains("report delivery failed"), "{}", d.log());
    assert_eq!(d.stop().0, 0);
    // Nothing more arrives after the outbox emptied: each report once.
    assert_eq!(
        subjects(&server),
        (0..3)
            .map(|i| format!("votewatch: f{i}.jsonl — loaded"))
            .collect::<Vec<_>>()
    );
}

/// Issue 8: shutdown waits for the mail sender to finish the message in hand. A SIGTERM that
/// comes while the SMTP server holds a report's data without answering yet ends the daemon
/// only after the answer: the report is delivered once and the outbox is empty (no entry
/// left half-sent under the sender's hidden name).
#[test]
fn a_stop_while_a_report_is_being_sent_lets_the_sender_finish_it() {
    let env = Env::new();
    let server = SmtpServer::start(0, None);
    server.close_gate();
    env.write("votewatch.toml", smtp_config(server.port, ""));
    let d = Daemon::start(&env);
    drop_file(&env, "a.jsonl", votes(1, 5));
    assert!(wait_until(WAIT, || server.someone_waits()), "{}", d.log());
    d.signal("TERM");
    d.wait_log("stopping: the other tasks finish", WAIT);
    assert!(server.received().is_empty());
    server.open_gate();
    assert_eq!(d.wait_exit(WAIT), Some(0));
    assert_eq!(server.received().len(), 1);
    let left: Vec<_> = fs::read_dir(env.path("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The report's chart: a PNG part inside the HTML alternative, referenced from the HTML by its
/// Content-ID, which decodes as an image of the chart's size; its numbers are in both parts.
#[test]
fn the_report_carries_the_weekly_chart_inline_with_its_numbers() {
    let env = Env::new();
    let server = SmtpServer::start(0, None);
    env.write("votewatch.toml", smtp_config(server.port, ""));
    let sample = crate::harness::test_data("sample-votes.jsonl");
    let run = env.run(&[
        "ingest",
        "--config",
        "votewatch.toml",
        "--report",
        sample.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let got = server.received();
    assert_eq!(got.len(), 1);
    let msg = MessageParser::default().parse(&got[0].data).unwrap();
    let html = msg.body_html(0).unwrap().into_owned();
    let text = msg.body_text(0).unwrap().into_owned();
    let image = msg
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
        })
        .expect("an image/png part");
    let cid = image.content_id().expect("the image has a Content-ID");
    assert!(html.contains(&format!("src=\"cid:{cid}\"")), "{html}");
    let decoder = png::Decoder::new(std::io::Cursor::new(image.contents().to_vec()));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!(
        (info.width, info.height),
        (
            votewatch::report::chart::WIDTH,
            votewatch::report::chart::HEIGHT
        )
    );
    // The sample's outlier weeks are marked in both parts' tables.
    assert!(
        text.contains("2022 week  1:        3  outlier, this batch"),
        "{text}"
    );
    assert!(
        html.contains("<td>2022</td><td>1</td><td>3</td><td>outlier, this batch</td>"),
        "{html}"
    );
}

#[test]
fn reports_pending_at_a_restart_arrive_with_their_message_id() {
    let env = Env::new();
    let port = free_port();
    env.write("votewatch.toml", smtp_config(port, ""));
    let d = Daemon::start(&env);
    drop_file(&env, "a.jsonl", votes(1, 4));
    assert!(wait_until(WAIT, || outbox_len(&env) == 1), "{}", d.log());
    assert_eq!(d.stop().0, 0);
    let entry = fs::read_dir(env.path("outbox"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let stored: serde_json::Value = serde_json::from_slice(&fs::read(&entry).unwrap()).unwrap();
    let id = stored["message_id"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();

    let server = SmtpServer::start(port, None);
    let d = Daemon::start(&env);
    assert!(
        wait_until(WAIT, || server.received().len() == 1),
        "{}",
        d.log()
    );
    assert_eq!(parse(&server.received()[0].data).message_id, id);
    assert!(wait_until(WAIT, || outbox_len(&env) == 0));
    let status = env.run(&["status", "--config", "votewatch.toml"]);
    assert!(
        status
            .stdout
            .contains("reports waiting in the outbox (outbox): 0"),
        "{}",
        status.stdout
    );
    assert_eq!(d.stop().0, 0);
}

#[test]
fn status_counts_reports_waiting() {
    let env = Env::new();
    let port = free_port();
    env.write("votewatch.toml", smtp_config(port, ""));
    env.write("a.jsonl", votes(1, 2));
    let run = env.run(&[
        "ingest",
        "--config",
        "votewatch.toml",
        "--report",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("report: 1 queued, 0 delivered, 1 waiting in outbox"),
        "{}",
        run.stdout
    );
    let status = env.run(&["status", "--config", "votewatch.toml"]);
    assert!(
        status
            .stdout
            .contains("reports waiting in the outbox (outbox): 1"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("files loaded: 1"),
        "{}",
        status.stdout
    );
}

#[test]
fn the_shipped_file_transport_writes_parseable_eml_files() {
    let env = Env::new();
    fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/votewatch.toml"),
        env.path("votewatch.toml"),
    )
    .unwrap();
    let d = Daemon::start(&env);
    drop_file(&env, "a.jsonl", votes(1, 3));
    let emls = || -> Vec<std::path::PathBuf> {
        fs::read_dir(env.path("reports"))
            .map(|r| {
                r.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(wait_until(WAIT, || emls().len() == 1), "{}", d.log());
    assert_eq!(d.stop().0, 0);
    let m = parse(&fs::read(&emls()[0]).unwrap());
    assert_eq!(m.subject, "votewatch: a.jsonl — loaded");
    assert_eq!(m.content_type, "multipart/alternative");
    assert!(
        m.text
            .contains("status loaded (ledger 1); read 3, inserted 3"),
        "{}",
        m.text
    );
    assert!(
        m.html
            .contains("<td>a.jsonl</td><td>votes</td><td class=\"n\">1</td><td class=\"status loaded\">loaded</td><td class=\"n\">3</td><td class=\"n\">3</td>"),
        "{}",
        m.html
    );
}

#[test]
fn smtps_with_tls_from_the_first_byte() {
    let env = Env::new();
    let pki = test_pki();
    let server = SmtpServer::start_with(0, Some(pki.server.clone()), true);
    env.write("ca.pem", &pki.ca_pem);
    env.write(
        "votewatch.toml",
        smtp_config(server.port, "ca_file = \"ca.pem\"")
            .replace("tls = \"none\"", "tls = \"tls\"")
            .replace("host = \"127.0.0.1\"", "host = \"localhost\""),
    );
    let run = env.run(&["send-test-email", "--config", "votewatch.toml"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls);
    assert_eq!(got[0].auth, None);
}

/// The HTML part of a report, as a mail client shows it: headless Chromium renders it with the
/// inline chart (its `cid:` resolved to the attached PNG, as a client does) into a screenshot,
/// and the screenshot shows the chart's bars (normal and outlier colours) and the verdict's
/// page. Needs Debian's `chromium` (VOTEWATCH_CHROMIUM names another); `.ci/run` installs it.
#[test]
fn chromium_renders_the_report_with_its_chart() {
    let env = Env::new();
    let sample = crate::harness::test_data("sample-votes.jsonl");
    let run = env.run(&["ingest", "--report", sample.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let eml = fs::read_dir(env.path("reports"))
        .unwrap()
        .flatten()
        .next()
        .expect("the file transport wrote the report")
        .path();
    let raw = fs::read(eml).unwrap();
    let msg = MessageParser::default().parse(&raw).unwrap();
    let image = msg
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.ctype() == "image"))
        .expect("an image part");
    let cid = image.content_id().unwrap().to_string();
    fs::write(env.path("chart.png"), image.contents()).unwrap();
    let html = msg
        .body_html(0)
        .unwrap()
        .replace(&format!("cid:{cid}"), "chart.png");
    fs::write(env.path("report.html"), html).unwrap();

    let chromium = crate::harness::needs::chromium();
    let shot = env.path("shot.png");
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=900,1400")
        .arg(format!("file://{}", env.path("report.html").display()))
        .bounded_output()
        .unwrap_or_else(|e| {
            panic!("cannot run {chromium} (apt-get install chromium; .ci/run does): {e}")
        });
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut img = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut img).unwrap();
    let channels = info.color_type.samples();
    let near = |c: votewatch::report::chart::Colour| {
        img.chunks(channels)
            .filter(|p| {
                p[0].abs_diff(c.0) <= 8 && p[1].abs_diff(c.1) <= 8 && p[2].abs_diff(c.2) <= 8
            })
            .count()
    };
    // Bars of both kinds are on the page, at a size a person can see.
    assert!(
        near(votewatch::report::chart::NORMAL_RGB) > 500,
        "no normal bars in the screenshot"
    );
    assert!(
        near(votewatch::report::chart::OUTLIER_RGB) > 500,
        "no outlier bars in the screenshot"
    );
}
