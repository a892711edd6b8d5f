//! The parse path allocates per family, never per sample: parsing 100 times as many samples
//! (with labels, escaped label values, exemplars, timestamps, a histogram and `_created` lines)
//! takes about as many allocations, counted by a global allocator that wraps the system's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use promfetcher::exposition::{self, InputFormat};

/// Counts the allocations (and reallocations) made by the current thread.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on unchanged to the system allocator; counting only touches a
// const-initialised thread-local, which does not allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A body of `series` request counters (three labels, one value with escapes), a histogram of
/// `series` label sets, and a gauge, in the given format.
fn body(series: usize, format: InputFormat) -> String {
    let openmetrics = format == InputFormat::OpenMetrics;
    let mut out = String::from("# HELP http_requests Requests \"served\" so far.\n");
    out.push_str("# TYPE http_requests counter\n");
    for i in 0..series {
        let uri = format!("/api/v1/items/{i}");
        if openmetrics {
            out.push_str(&format!(
                "http_requests_total{{method=\"GET\",status=\"200\",uri=\"{uri}\",note=\"a \\\"quoted\\\" one\"}} {i} 1700000000.5 # {{trace_id=\"{i:x}\"}} 1 1700000000.25\n"
            ));
            out.push_str(&format!(
                "http_requests_created{{method=\"GET\",status=\"200\",uri=\"{uri}\",note=\"a \\\"quoted\\\" one\"}} 1699990000\n"
            ));
        } else {
            out.push_str(&format!(
                "http_requests_total{{method=\"GET\",status=\"200\",uri=\"{uri}\",note=\"a \\\"quoted\\\" one\"}} {i} 1700000000500\n"
            ));
        }
    }
    out.push_str("# TYPE request_seconds histogram\n");
    for i in 0..series {
        for le in ["0.1", "1", "+Inf"] {
            out.push_str(&format!(
                "request_seconds_bucket{{uri=\"/u/{i}\",le=\"{le}\"}} {i}\n"
            ));
        }
        out.push_str(&format!("request_seconds_sum{{uri=\"/u/{i}\"}} 1.5e-3\n"));
        out.push_str(&format!("request_seconds_count{{uri=\"/u/{i}\"}} {i}\n"));
    }
    out.push_str("# TYPE temperature gauge\ntemperature NaN\n");
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// Allocations made while parsing `body`, and the number of samples parsed.
fn allocations_to_parse(body: &str, format: InputFormat) -> (usize, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let parsed = exposition::parse(body.as_bytes(), format).expect("the body parses");
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    let samples = parsed.families.iter().map(|f| f.samples.len()).sum();
    (allocations, samples)
}

#[test]
fn parsing_allocates_per_family_not_per_sample() {
    for format in [InputFormat::Text, InputFormat::OpenMetrics] {
        let (small, small_samples) = allocations_to_parse(&body(100, format), format);
        let (large, large_samples) = allocations_to_parse(&body(10_000, format), format);
        assert!(
            large_samples >= 100 * small_samples - 100,
            "{format:?}: {small_samples} and {large_samples} samples"
        );
        // Vectors that grow by doubling take a few more steps for the larger body; one
        // allocation per sample would be 60,000 or more.
        assert!(
            large <= small + 32,
            "{format:?}: {small} allocations for {small_samples} samples, {large} for {large_samples}"
        );
        assert!(
            small < 64,
            "{format:?}: {small} allocations for {small_samples} samples"
        );
        eprintln!(
            "measured: {format:?}: {small} allocations for {small_samples} samples, {large} for {large_samples}"
        );
    }
}
