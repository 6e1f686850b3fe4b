//! The open edge (#15.1): `iaas serve` under a low open-files limit, flooded with more idle,
//! half-header and trickling connections than the limit allows. It closes them at the header
//! and body time-outs, holds no more than its connection cap, and still acks a signed command.
//! One test in this binary: it lowers the test process's own open-files limit around the spawn.

mod common;

use std::time::Duration;

use common::Serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OPEN_FILES: u64 = 256;

fn set_open_files(soft: u64) -> u64 {
    let mut rlim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on this process with a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlim), 0);
        let old = rlim.rlim_cur;
        rlim.rlim_cur = soft.min(rlim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rlim), 0);
        old
    }
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Waits (polling, with a generous bound against hanging) until the server holds at most `n`
/// files; the files it held at the end.
async fn settles_to(pid: u32, n: usize) -> usize {
    for _ in 0..600 {
        if open_files(pid) <= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open_files(pid)
}

/// Whether the server closed `stream` (EOF or reset, after at most an error answer).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_connection_flood_is_shed_and_timed_out_and_slack_still_gets_its_ack() {
    let old = set_open_files(OPEN_FILES);
    let serve = Serve::start_with(None, &[("IAAS_HTTP_HEADER_TIMEOUT_SECS", "2"), ("IAAS_HTTP_BODY_TIMEOUT_SECS", "2")]).await;
    set_open_files(old);
    let pid = serve.pid();
    let addr = serve.url.trim_start_matches("http://").to_string();
    assert_eq!(serve.slash("U1", "vm list").await.0, 200);
    serve.answer().await;
    let baseline = open_files(pid);

    // More connections than the server has files: idle ones, half headers, one body byte.
    let mut flood = Vec::new();
    for i in 0..(OPEN_FILES as usize + 100) {
        let Ok(mut s) = TcpStream::connect(&addr).await else { continue };
        let opening: &[u8] = match i % 3 {
            0 => b"",
            1 => b"POST /slack/commands HTTP/1.1\r\nHost: x\r\n",
            _ => b"POST /api/v1/decommissions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na",
        };
        let _ = s.write_all(opening).await;
        flood.push(s);
    }
    // (c) The server holds no more than its cap (256 - 64 - 64 shed answers) plus its own files.
    let held = open_files(pid);
    eprintln!("baseline {baseline} files, {held} during the flood");
    assert!(held < OPEN_FILES as usize, "held {held} files of {OPEN_FILES}");
    assert!(held <= baseline + 128 + 64, "held {held} files, baseline {baseline}");

    // (a) Idle, half-header and trickling connections are closed by the time-outs, while the
    // flood's side still holds them open.
    let after = settles_to(pid, baseline + 4).await;
    assert!(after <= baseline + 4, "still {after} files open, baseline {baseline}");
    let mut open = 0;
    for s in flood.iter_mut() {
        if !closed_by_server(s).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "connections the server never closed");

    // (b) A signed command is acked while the flood's sockets are still held by the client.
    let (status, ack, id) = serve.slash("U1", "vm list").await;
    assert_eq!(status, 200, "{}", ack.readable());
    assert!(id.is_some(), "{}", ack.readable());
    assert!(serve.answer().await.readable().contains("VM"));
    drop(flood);
}
