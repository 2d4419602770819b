//! Numbering speed and memory. First a table (printed before criterion runs): how long
//! the compiled-in libphonenumber data takes to load and how much heap it holds
//! (counted by a wrapping global allocator: bytes live after loading minus before),
//! for the number plans, their compiled patterns, the carrier prefixes and a
//! ported-numbers file of a million numbers. Then criterion's lookups per second on
//! one core (`thrpt`, in numbers): a whole classification (parse, validate, country,
//! type, MNO) of numbers from 40 countries, of national-format numbers with a default
//! country, the carrier prefix table alone, and the ported-numbers table.
//!
//! Run: `cargo bench --bench numbers -- --warm-up-time 1 --measurement-time 3`
//! Environment: `VQPROBE_BENCH_PORTED` (ported numbers, default 1000000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use criterion::{Criterion, Throughput};
use vqprobe::engine::numbers::carriers::CarrierTable;
use vqprobe::engine::numbers::ported::PortedNumbers;
use vqprobe::engine::numbers::{NumberPlan, Numbering, Region};

/// Net heap bytes allocated by the process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is
// only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const PLAN_JSON: &str = include_str!("../crates/vqprobe-engine/data/numbering-plan.json");
const CARRIERS_TSV: &str = include_str!("../crates/vqprobe-engine/data/carriers.tsv");

/// Mobile and fixed numbers of 40 countries (libphonenumber's example numbers).
const E164: [&str; 40] = [
    "+919876543210",
    "+5511961234567",
    "+33612345678",
    "+8613123456789",
    "+6281234567890",
    "+971501234567",
    "+447400123456",
    "+4915123456789",
    "+43664123456",
    "+41781234567",
    "+393123456789",
    "+353850123456",
    "+2348021234567",
    "+27711234567",
    "+254712123456",
    "+12015550123",
    "+15062345678",
    "+522221234567",
    "+34612345678",
    "+819012345678",
    "+61412345678",
    "+79123456789",
    "+77710009998",
    "+905012345678",
    "+201001234567",
    "+923012345678",
    "+8801812345678",
    "+639051234567",
    "+966512345678",
    "+5491123456789",
    "+31612345678",
    "+48512345678",
    "+84912345678",
    "+66812345678",
    "+60123456789",
    "+821020000000",
    "+233231234567",
    "+212650123456",
    "+573211234567",
    "+46701234567",
];

/// National formats, with the country they are read in.
const NATIONAL: [(&str, &str); 8] = [
    ("09876543210", "IN"),
    ("07400 123456", "GB"),
    ("0151 23456789", "DE"),
    ("06 12 34 56 78", "FR"),
    ("(11) 96123-4567", "BR"),
    ("0712 123456", "KE"),
    ("0802 123 4567", "NG"),
    ("(201) 555-0123", "US"),
];

fn mib(bytes: isize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() {
    // --- loading ---------------------------------------------------------------
    let before = live();
    let t = Instant::now();
    let plan = NumberPlan::from_json(PLAN_JSON).expect("plan parses");
    let plan_ms = t.elapsed().as_secs_f64() * 1e3;
    let plan_bytes = live() - before;

    let before = live();
    let t = Instant::now();
    let carriers = CarrierTable::from_tsv(CARRIERS_TSV).expect("carriers parse");
    let carriers_ms = t.elapsed().as_secs_f64() * 1e3;
    let carriers_bytes = live() - before;

    let before = live();
    let t = Instant::now();
    plan.compile_all().expect("patterns compile");
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let compile_bytes = live() - before;
    drop(plan);
    drop(carriers);

    println!(
        "## Numbering data ({})",
        CARRIERS_TSV
            .lines()
            .nth(4)
            .unwrap_or("")
            .trim_start_matches("# ")
    );
    println!();
    println!("| what | size on disk | heap after loading | load time |");
    println!("|---|---:|---:|---:|");
    println!(
        "| number plans, {} territories | {} KiB | {} | {plan_ms:.1} ms |",
        NumberPlan::from_json(PLAN_JSON).map_or(0, |p| p.len()),
        PLAN_JSON.len() / 1024,
        mib(plan_bytes)
    );
    println!(
        "| their patterns, all compiled (lazily, per country, in the probe) | | {} | {compile_ms:.0} ms |",
        mib(compile_bytes)
    );
    let table = CarrierTable::from_tsv(CARRIERS_TSV).expect("carriers parse");
    println!(
        "| carrier prefixes: {} prefixes, {} names | {} KiB | {} | {carriers_ms:.1} ms |",
        table.len(),
        table.names(),
        CARRIERS_TSV.len() / 1024,
        mib(carriers_bytes)
    );

    // --- ported numbers ------------------------------------------------------------
    let ported = ported_table();
    let probes: Vec<String> = (0..1000u64)
        .map(|i| format!("+4474{:08}", i * 7919 % 100_000_000))
        .collect();

    // --- the probe's numbering in use ------------------------------------------------
    let before = live();
    let numbering = Numbering::builtin();
    // Compile the patterns of the countries used, as the first calls from them do.
    for n in E164 {
        black_box(numbering.classify(n, None));
    }
    println!(
        "| the probe's numbering after classifying numbers of 40 countries (plans, \
         carriers, 40 countries' patterns) | | {} | |",
        mib(live() - before)
    );
    println!();

    // --- lookups -----------------------------------------------------------------
    let national: Vec<(Numbering, &str)> = NATIONAL
        .iter()
        .map(|(n, c)| {
            (
                Numbering::builtin().with_default_country(Region::parse(c)),
                *n,
            )
        })
        .collect();
    for (nb, n) in &national {
        black_box(nb.classify(n, None));
    }
    let digits: Vec<String> = E164.iter().map(|n| n.replace('+', "")).collect();

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("numbers");
    group.throughput(Throughput::Elements(E164.len() as u64));
    group.bench_function("classify_e164_40_countries", |b| {
        b.iter(|| {
            for n in E164 {
                black_box(numbering.classify(black_box(n), None));
            }
        })
    });
    group.throughput(Throughput::Elements(national.len() as u64));
    group.bench_function("classify_national_8_countries", |b| {
        b.iter(|| {
            for (nb, n) in &national {
                black_box(nb.classify(black_box(n), None));
            }
        })
    });
    group.throughput(Throughput::Elements(digits.len() as u64));
    group.bench_function("carrier_prefix_only", |b| {
        b.iter(|| {
            for d in &digits {
                black_box(table.lookup(black_box(d)));
            }
        })
    });
    group.throughput(Throughput::Elements(probes.len() as u64));
    group.bench_function("ported_1m_exact", |b| {
        b.iter(|| {
            for p in &probes {
                black_box(ported.lookup(black_box(p)));
            }
        })
    });
    group.finish();
    c.final_summary();
}

/// A ported-numbers table of `VQPROBE_BENCH_PORTED` UK mobile numbers, its load time
/// and heap printed as a row of the table.
fn ported_table() -> PortedNumbers {
    let count: u64 = std::env::var("VQPROBE_BENCH_PORTED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut csv = String::from("number,mno\n");
    for i in 0..count {
        csv.push_str(&format!(
            "+4474{:08},Operator {}\n",
            i * 7 % 100_000_000,
            i % 5
        ));
    }
    let before = live();
    let t = Instant::now();
    let ported = PortedNumbers::from_csv_str(&csv).expect("ported numbers parse");
    let ported_ms = t.elapsed().as_secs_f64() * 1e3;
    let ported_bytes = live() - before;
    println!(
        "| ported numbers: {} numbers | {} KiB (CSV) | {} | {ported_ms:.0} ms |",
        ported.len(),
        csv.len() / 1024,
        mib(ported_bytes)
    );
    ported
}
