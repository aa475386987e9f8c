//! Runs a benchmark under criterion (`cargo bench`), or once as a smoke test.
//!
//! `cargo test --all-targets` runs bench targets too, passing libtest flags (`--test-threads`)
//! that criterion's own parser rejects; without `--bench` on the command line every benchmark
//! therefore runs its setup and routine exactly once, and nothing is measured or saved.

use std::future::Future;

use criterion::{BatchSize, Criterion};

/// Criterion, or the one-shot smoke mode.
pub(crate) struct Runner {
    /// `None` in smoke mode.
    criterion: Option<Criterion>,
    /// Benchmarks run (smoke mode) or registered.
    count: usize,
}

impl Runner {
    /// Criterion configured from the command line when cargo runs `cargo bench`, else smoke.
    pub(crate) fn from_args() -> Self {
        let bench = std::env::args().any(|a| a == "--bench");
        Self {
            criterion: bench.then(|| Criterion::default().configure_from_args()),
            count: 0,
        }
    }

    /// A routine with no per-iteration setup.
    pub(crate) fn run<O>(&mut self, group: &str, name: &str, mut routine: impl FnMut() -> O) {
        self.count += 1;
        match &mut self.criterion {
            Some(c) => {
                c.benchmark_group(group)
                    .bench_function(name, |b| b.iter(&mut routine));
            }
            None => {
                std::hint::black_box(routine());
            }
        }
    }

    /// A routine whose input is prepared, untimed, before every single call.
    pub(crate) fn per_call<I, O>(
        &mut self,
        group: &str,
        name: &str,
        mut setup: impl FnMut() -> I,
        mut routine: impl FnMut(I) -> O,
    ) {
        self.count += 1;
        match &mut self.criterion {
            Some(c) => {
                c.benchmark_group(group).bench_function(name, |b| {
                    b.iter_batched(&mut setup, &mut routine, BatchSize::PerIteration)
                });
            }
            None => {
                std::hint::black_box(routine(setup()));
            }
        }
    }

    /// An async routine on `rt`; the input (a request) is built untimed.
    pub(crate) fn future<I, F: Future>(
        &mut self,
        rt: &tokio::runtime::Runtime,
        group: &str,
        name: &str,
        mut setup: impl FnMut() -> I,
        mut routine: impl FnMut(I) -> F,
    ) {
        self.count += 1;
        match &mut self.criterion {
            Some(c) => {
                c.benchmark_group(group).bench_function(name, |b| {
                    b.to_async(rt)
                        .iter_batched(&mut setup, &mut routine, BatchSize::SmallInput)
                });
            }
            None => {
                std::hint::black_box(rt.block_on(routine(setup())));
            }
        }
    }

    /// Prints criterion's summary, or what the smoke run covered.
    pub(crate) fn finish(self) {
        match self.criterion {
            Some(c) => c.final_summary(),
            None => println!(
                "micro: {} benchmarks ran once (smoke test); `cargo bench --bench micro` measures them",
                self.count
            ),
        }
    }
}
