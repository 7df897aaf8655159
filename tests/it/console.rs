//! The operator console's API on the daemon's address: the ledger as `history --format json`
//! shows it, one arrival in full, filters checked with a 400 that says why, and the security
//! headers on every answer.

use std::io::{Read, Write};

use crate::daemon::{drop_file, http_addr, names, wait_until, Daemon, CONFIG, WAIT};
use crate::harness::{votes, Env};

/// One GET: (status, head, body).
fn get(addr: &str, path: &str) -> (u16, String, String) {
    get_with(addr, path, "")
}

/// One GET with more header lines (each ending in CRLF).
fn get_with(addr: &str, path: &str, headers: &str) -> (u16, String, String) {
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).expect("an answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

const XSS: &str = r#"<img src=x onerror="document.title='pwned'">.jsonl"#;

/// A daemon that loaded a good file, a partial one and a rejected one with a hostile name,
/// once the console shows all three: the test folder, the daemon and its HTTP address.
fn three_loads() -> (Env, Daemon, String) {
    let env = Env::new();
    let d = Daemon::start(&env);
    let addr = http_addr(&d);
    drop_file(&env, "a.jsonl", votes(1, 5));
    drop_file(&env, "b.jsonl", format!("{}\nnot json", votes(10, 3)));
    drop_file(&env, XSS, "nonsense\nmore nonsense\n");
    let loads = || json(&get(&addr, "/api/loads").2);
    assert!(
        wait_until(WAIT, || loads().as_array().is_some_and(|a| a.len() == 3)),
        "{}\n{}",
        loads(),
        d.log()
    );
    (env, d, addr)
}

#[test]
fn the_api_lists_loads_shows_one_and_refuses_bad_filters() {
    let (env, d, addr) = three_loads();
    assert_eq!(names(&env.path("failed")).len(), 2);

    let (code, head, body) = get(&addr, "/api/loads");
    assert_eq!(code, 200);
    for h in [
        "content-security-policy: default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
    ] {
        assert!(head.contains(h), "{h} missing: {head}");
    }
    let all = json(&body);
    let rows = all.as_array().unwrap();
    // Newest first, the same objects as `history --format json`.
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let by_file = |f: &str| rows.iter().find(|r| r["file"] == f).unwrap().clone();
    assert_eq!(by_file("a.jsonl")["status"], "loaded");
    assert_eq!(by_file(XSS)["status"], "rejected");
    let b = by_file("b.jsonl");
    assert_eq!(
        (b["status"].as_str(), b["rejected"].as_u64()),
        (Some("partial"), Some(1))
    );

    let partial = json(&get(&addr, "/api/loads?status=partial").2);
    assert_eq!(partial.as_array().unwrap().len(), 1);
    assert_eq!(partial[0]["file"], "b.jsonl");
    let named = json(&get(&addr, "/api/loads?file=a.jsonl&limit=5").2);
    assert_eq!(named.as_array().unwrap().len(), 1);
    let one = json(&get(&addr, "/api/loads?limit=1").2);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(
        json(&get(&addr, "/api/loads?since=1h").2)
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // One arrival in full.
    let id = b["id"].as_i64().unwrap();
    let (code, head, body) = get(&addr, &format!("/api/loads/{id}"));
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-frame-options: deny"));
    let detail = json(&body);
    assert_eq!(detail["file"], "b.jsonl");
    assert_eq!(detail["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(detail["format"], "jsonl");
    assert_eq!(detail["report"], "queued");
    assert!(detail["archived_to"]
        .as_str()
        .unwrap()
        .ends_with("processed/b.jsonl"));
    assert_eq!(detail["first_rejects"][0]["line"], 4);
    assert_eq!(detail["first_rejects"][0]["raw"], "not json");
    assert_eq!(detail["commands"][0], format!("votewatch reingest {id}"));

    // Bad requests say why; a missing arrival is a 404.
    for (path, code, why) in [
        (
            "/api/loads?limit=0",
            400,
            "limit must be a whole number from 1 to 1000",
        ),
        ("/api/loads?status=done", 400, "status must be one of"),
        ("/api/loads?bogus=1", 400, "unknown parameter"),
        ("/api/loads?since=soon", 400, "--since"),
        (
            "/api/loads/abc",
            400,
            "the ledger id must be a whole number",
        ),
        ("/api/loads/999999", 404, "is not among the newest"),
    ] {
        let (got, head, body) = get(&addr, path);
        assert_eq!(got, code, "{path}: {body}");
        assert!(
            json(&body)["error"].as_str().unwrap().contains(why),
            "{path}: {body}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{path}");
    }
    // The headers are on the operators' endpoints too.
    let (code, head, _) = get(&addr, "/healthz");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert_eq!(d.stop().0, 0);
}

/// With `daemon.http_token_file` set, the API answers only the bearer of the token (401
/// otherwise, without a word of the ledger); `/healthz` and `/metrics` stay open.
#[test]
fn with_a_token_file_the_api_asks_for_the_token() {
    let env = Env::new();
    env.write("http-token", "s3cret-token\n");
    env.write(
        "votewatch.toml",
        format!("{CONFIG}http_token_file = \"http-token\"\n"),
    );
    let d = Daemon::start(&env);
    let addr = http_addr(&d);
    drop_file(&env, "secret-name.jsonl", votes(1, 5));
    let bearer = "Authorization: Bearer s3cret-token\r\n";
    assert!(
        wait_until(WAIT, || json(&get_with(&addr, "/api/loads", bearer).2)
            .as_array()
            .is_some_and(|a| a.len() == 1)),
        "{}",
        d.log()
    );
    for headers in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: s3cret-token\r\n",
    ] {
        let (code, _, body) = get_with(&addr, "/api/loads", headers);
        assert_eq!(code, 401, "{headers:?}: {body}");
        assert!(!body.contains("secret-name"), "{body}");
        assert!(body.contains("daemon.http_token_file"), "{body}");
    }
    let (code, _, body) = get_with(&addr, "/api/loads/1", bearer);
    assert_eq!(code, 200, "{body}");
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/metrics").0, 200);
    assert_eq!(d.stop().0, 0);
}

/// The pages: the overview with health, counts and the weekly chart (an SVG with its title
/// and axis labels), the ledger with filters and links, one arrival with its rejects and the
/// commands. A hostile file name is printed as text, never as markup.
#[test]
fn the_pages_show_the_loads_and_print_names_as_text() {
    let (_env, d, addr) = three_loads();
    let (code, head, page) = get(&addr, "/");
    assert_eq!(code, 200, "{page}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(!page.contains("<script"), "{page}");
    // The stylesheet the e-mailed reports carry too.
    assert!(
        page.contains(include_str!("../../templates/style.css")),
        "{page}"
    );
    for text in [
        "Overview",
        ">ok<",
        "nothing expected",
        "<svg",
        "Weekly votes",
        "votes",
        "week (year-Www",
        "within 20% of the mean",
        "loaded",
        "partial",
        "rejected",
    ] {
        assert!(page.contains(text), "the overview lacks {text:?}: {page}");
    }

    let (code, _, page) = get(&addr, "/loads");
    assert_eq!(code, 200);
    for name in ["a.jsonl", "b.jsonl"] {
        assert!(page.contains(name), "{name}: {page}");
    }
    assert!(!page.contains("<img"), "the name became markup: {page}");
    assert!(
        page.contains("&#60;img src=x onerror=&#34;document.title=&#39;pwned&#39;"),
        "{page}"
    );
    let id = |name: &str| {
        json(&get(&addr, &format!("/api/loads?file={name}")).2)[0]["id"]
            .as_i64()
            .unwrap()
    };
    let b = id("b.jsonl");
    assert!(page.contains(&format!("<a href=\"/loads/{b}\">")), "{page}");
    let (_, _, partial) = get(&addr, "/loads?status=partial");
    assert!(
        partial.contains("b.jsonl") && !partial.contains("a.jsonl"),
        "{partial}"
    );
    assert!(
        partial.contains("<option value=\"partial\" selected>"),
        "{partial}"
    );
    let (code, _, why) = get(&addr, "/loads?limit=0");
    assert_eq!(
        (code, why.trim()),
        (400, "limit must be a whole number from 1 to 1000")
    );
    // One page of one row: a link to the next.
    let (_, _, first) = get(&addr, "/loads?limit=1");
    assert!(
        first.contains("href=\"/loads?limit=1&#38;page=2\""),
        "{first}"
    );

    let (code, _, page) = get(&addr, &format!("/loads/{b}"));
    assert_eq!(code, 200, "{page}");
    for text in [
        "b.jsonl",
        "partial",
        "First rejects",
        "not json",
        "queued in the outbox",
        &format!("votewatch reingest {b}"),
    ] {
        assert!(page.contains(text), "the page lacks {text:?}: {page}");
    }
    let x = id("%3Cimg%20src%3Dx%20onerror%3D%22document.title%3D%27pwned%27%22%3E.jsonl");
    let (code, _, page) = get(&addr, &format!("/loads/{x}"));
    assert_eq!(code, 200, "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(page.contains("<title>&#60;img src=x"), "{page}");
    assert_eq!(get(&addr, "/loads/abc").0, 400);
    assert_eq!(get(&addr, "/loads/999999").0, 404);
    assert_eq!(d.stop().0, 0);
}

/// The overview says how many reports wait in the outbox, since when, and why the last
/// delivery failed (a mail server that is not there); so does `/status`.
#[test]
fn the_overview_shows_reports_waiting_and_the_last_delivery_error() {
    let env = Env::new();
    let port = crate::smtp::free_port();
    env.write(
        "votewatch.toml",
        format!(
            "{CONFIG}[report]\nfrom = \"vw@example.com\"\nto = [\"ops@example.com\"]\n\
             transport = \"smtp\"\nretry_initial_ms = 100\nretry_max_ms = 400\n\
             [report.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
        ),
    );
    let d = Daemon::start(&env);
    let addr = http_addr(&d);
    drop_file(&env, "a.jsonl", votes(1, 5));
    let overview = || get(&addr, "/").2;
    assert!(
        wait_until(WAIT, || {
            let page = overview();
            page.contains("last delivery failed at")
                && page.contains("1 report, the oldest queued 20")
        }),
        "{}\n{}",
        overview(),
        d.log()
    );
    let status = json(&get(&addr, "/status").2);
    assert!(
        status["outbox_oldest"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{status}"
    );
    assert!(
        status["last_delivery_error"]["error"].as_str().is_some(),
        "{status}"
    );
    assert_eq!(d.stop().0, 0);
}

/// Renders `url` in headless Chromium: the DOM after scripts would have run, and a
/// screenshot of the window (1280×800) at `shot`.
fn chromium(url: &str, shot: &std::path::Path) -> String {
    use crate::harness::BoundedOutput;
    let chromium = crate::harness::needs::chromium();
    let run = |extra: &[String]| {
        std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1280,800",
                "--virtual-time-budget=3000",
            ])
            .args(extra)
            .arg(url)
            .bounded_output()
            .unwrap_or_else(|e| panic!("cannot run {chromium}: {e}"))
    };
    let dom = run(&["--dump-dom".to_string()]);
    run(&[format!("--screenshot={}", shot.display())]);
    assert!(
        shot.exists(),
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// The size of a PNG.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let info = decoder.read_info().unwrap();
    (info.info().width, info.info().height)
}

/// What a person sees of the console in a real browser (Debian's `chromium`, headless): the
/// overview with its chart, the list of loads, one load's page; a file named like an HTML
/// element stays text and cannot run anything. Screenshots at 1280×800 are kept in
/// `target/tmp/console-screenshots/` for people to look at.
#[test]
fn chromium_shows_the_console_and_a_hostile_name_stays_text() {
    let (_env, d, addr) = three_loads();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let rows = json(&get(&addr, "/api/loads").2);
    let id_of = |f: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["file"] == f)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (b, hostile) = (id_of("b.jsonl"), id_of(XSS));
    let page = |name: &str, path: &str| {
        let shot = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&shot);
        let dom = chromium(&format!("http://{addr}{path}"), &shot);
        assert_eq!(png_size(&shot), (1280, 800), "{name}");
        // Nothing the supplier named became an element, or ran.
        assert!(!dom.contains("<img src=\"x\""), "{name}: {dom}");
        assert!(!dom.contains("pwned</title>"), "{name}: {dom}");
        dom
    };

    let overview = page("overview", "/");
    for seen in ["<svg", "Weekly votes", "week (year-Www", "\nvotes\n</text>"] {
        assert!(
            overview.contains(seen),
            "overview lacks {seen:?}: {overview}"
        );
    }
    let loads = page("loads", "/loads");
    for seen in [
        "a.jsonl",
        "b.jsonl",
        "&lt;img src=x onerror=",
        "loaded",
        "partial",
        "rejected",
    ] {
        assert!(loads.contains(seen), "loads lacks {seen:?}: {loads}");
    }
    let load = page("load", &format!("/loads/{b}"));
    for seen in [
        "b.jsonl",
        "partial",
        "not json",
        &format!("votewatch reingest {b}"),
    ] {
        assert!(
            load.contains(seen),
            "the load's page lacks {seen:?}: {load}"
        );
    }
    let named = page("hostile", &format!("/loads/{hostile}"));
    let title = named
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_default();
    assert!(
        title.contains("onerror"),
        "the title is the name, as text: {title}"
    );
    assert!(
        !title.contains("pwned") || title.contains("&lt;img"),
        "{title}"
    );
    drop(d);
}

/// A load's page and API say when the file arrived, was claimed, committed and archived, in
/// that order.
#[test]
fn a_load_says_when_it_arrived_was_claimed_committed_and_archived() {
    let (_env, d, addr) = three_loads();
    let rows = json(&get(&addr, "/api/loads").2);
    let a = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "a.jsonl")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    // The archive time is recorded with the batch's report, just after the moves.
    let mut one = serde_json::Value::Null;
    assert!(
        wait_until(WAIT, || {
            one = json(&get(&addr, &format!("/api/loads/{a}")).2);
            one["archived_utc"].is_string()
        }),
        "{one}"
    );
    let t = |k: &str| {
        one[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}: {one}"))
            .to_string()
    };
    let (arrived, claimed, finished, archived) = (
        t("arrived_utc"),
        t("claimed_utc"),
        t("finished_utc"),
        t("archived_utc"),
    );
    assert!(
        arrived <= claimed && claimed <= finished && finished <= archived,
        "{arrived} {claimed} {finished} {archived}"
    );
    let page = get(&addr, &format!("/loads/{a}")).2;
    for th in [
        "arrived (UTC)",
        "claimed (UTC)",
        "committed (UTC)",
        "archived (UTC)",
    ] {
        assert!(page.contains(th), "{th}: {page}");
    }
    assert!(page.contains(&archived), "{page}");
    drop(d);
}
