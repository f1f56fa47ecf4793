//! mlsim: replays recorded cluster traces through the very scheduling core the live scheduler runs.

pub mod autoscale;
pub mod bound;
pub mod bound_table;
pub mod buckets;
pub mod compare;
pub mod drift;
pub mod jobs;
pub mod mig;
pub mod plot;
pub mod progress;
pub mod published;
pub mod readme;
pub mod replay;
pub mod reproduce;
pub mod stream;
pub mod stress;
pub mod stress_table;
pub mod trace;
pub mod trace_error;
