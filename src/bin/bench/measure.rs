//! What the harness measures with: CPU time and resident memory from /proc
//! (Linux only), and the median and range of repeated runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn main_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name(format!("qcc-customers{}", std::env::consts::EXE_SUFFIX))
}

/// User + system CPU seconds of this process so far (from /proc/self/stat).
pub fn own_cpu_seconds() -> f64 {
    let (user, sys) = own_cpu();
    user + sys
}

/// User and system CPU seconds of this process so far, apart.
pub fn own_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime), counted from after the ")"; clock ticks are 100/s on Linux.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// The simulator as a process of its own (`mock-server` with `args`), so
/// that this process's CPU is the client's alone; killed when dropped.
pub struct SimProcess {
    child: std::process::Child,
    pub endpoint: String,
}

impl SimProcess {
    pub fn spawn(args: &[&str]) -> anyhow::Result<SimProcess> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let child = Command::new(main_binary())
            .arg("mock-server")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(SimProcess { child, endpoint: format!("http://127.0.0.1:{port}/api/yj/Customer/GetList") })
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// Run a child to its end, sampling its resident memory; returns (exit code,
/// wall time, peak RSS MiB, RSS samples MiB).
pub fn run_sampled(cmd: &mut Command, every: Duration) -> anyhow::Result<(i32, Duration, f64, Vec<f64>)> {
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let pid = child.id();
    let mut peak = 0u64;
    let mut samples = Vec::new();
    let mut last_sample = Instant::now();
    loop {
        if let Some(hwm) = proc_status_kb(pid, "VmHWM:") {
            peak = peak.max(hwm);
        }
        if last_sample.elapsed() >= every {
            last_sample = Instant::now();
            if let Some(rss) = proc_status_kb(pid, "VmRSS:") {
                samples.push(rss as f64 / 1024.0);
            }
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status.code().unwrap_or(-1), start.elapsed(), peak as f64 / 1024.0, samples));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Median and range of repeated measurements.
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    n: usize,
}

impl Spread {
    pub fn of(values: impl Iterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        Spread { median: v[n / 2], min: v[0], max: v[n - 1], n }
    }

    /// "median 3150 (3 runs: 2990–3420)"; in thousands ("182k") if asked.
    pub fn show(&self, thousands: bool) -> String {
        let r = |x: f64| {
            if thousands {
                format!("{:.0}k", x / 1000.0)
            } else {
                format!("{x:.0}")
            }
        };
        if self.n == 1 {
            r(self.median)
        } else {
            format!("median {} ({} runs: {}–{})", r(self.median), self.n, r(self.min), r(self.max))
        }
    }
}
