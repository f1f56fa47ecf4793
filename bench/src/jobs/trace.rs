//! Readers of the two training-job traces: Microsoft ITP 2021 (`job_id,submission_time,duration,num_gpu`,
//! one file per cluster, sorted) and Microsoft Philly as shipped with Pollux
//! (`timestamp,duration,num_gpus,gpu_time,cluster`, not sorted, usually gzipped).
//!
//! The format is told by the header. A malformed row is an error naming the file, the line and the column,
//! never a panic. `.gz` files are decompressed on the fly.

use std::io::Read;
use std::path::Path;

use crate::trace_error::{TraceError, invalid, row_error};
use serde::Deserialize;

/// One training job as the replay sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Row id: the ITP `job_id`, or `philly-<line>` (Philly rows have no id).
    pub id: String,
    /// Seconds since the trace's first submission (after sorting).
    pub submit: f64,
    /// Run time in seconds as recorded: taken as the run time with a rack-local (or single-node) placement.
    pub duration: f64,
    pub gpus: u32,
    /// Philly's virtual cluster (`cluster` column); ITP rows have none (a file is one cluster).
    pub vc: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    Itp,
    Philly,
}

/// Errors name the file, line and column, as the GPU-trace readers' do.
pub type JobTraceError = TraceError;

#[derive(Debug, Deserialize)]
struct ItpRow {
    job_id: String,
    submission_time: f64,
    duration: f64,
    num_gpu: u32,
}

#[derive(Debug, Deserialize)]
struct PhillyRow {
    timestamp: String,
    duration: f64,
    num_gpus: u32,
    #[allow(dead_code)]
    #[serde(default)]
    gpu_time: Option<f64>,
    #[serde(default)]
    cluster: Option<String>,
}

fn open(path: &Path) -> Result<Box<dyn Read>, JobTraceError> {
    let file = std::fs::File::open(path).map_err(|source| TraceError::Open { file: path.to_path_buf(), source })?;
    let reader = std::io::BufReader::new(file);
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads either trace from a file (format told by the header), sorted by submission (stable, so equal
/// times keep file order), submission times shifted so the first job arrives at 0.
pub fn read_jobs(path: &Path) -> Result<(TraceFormat, Vec<Job>), JobTraceError> {
    read_jobs_from(path, open(path)?)
}

/// Like [`read_jobs`], from any reader; `path` only names the source in errors.
pub fn read_jobs_from(path: &Path, input: impl Read) -> Result<(TraceFormat, Vec<Job>), JobTraceError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let headers =
        reader.headers().map_err(|e| TraceError::File { file: path.to_path_buf(), message: e.to_string() })?.clone();
    let has = |name: &str| headers.iter().any(|h| h == name);
    let (format, mut jobs) = if has("submission_time") {
        (TraceFormat::Itp, read_itp(path, &mut reader, &headers)?)
    } else if has("timestamp") {
        (TraceFormat::Philly, read_philly(path, &mut reader, &headers)?)
    } else {
        return Err(TraceError::File {
            file: path.to_path_buf(),
            message: format!(
                "unknown header {:?}: expected ITP (job_id,submission_time,duration,num_gpu) or Philly \
                 (timestamp,duration,num_gpus,gpu_time,cluster)",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        });
    };
    if jobs.is_empty() {
        return Err(TraceError::File { file: path.to_path_buf(), message: "no jobs".into() });
    }
    jobs.sort_by(|a, b| a.submit.total_cmp(&b.submit));
    shift_to_zero(&mut jobs);
    Ok((format, jobs))
}

/// Submission times relative to the first job (sorted input).
pub fn shift_to_zero(jobs: &mut [Job]) {
    let first = jobs.first().map_or(0.0, |j| j.submit);
    for job in jobs {
        job.submit -= first;
    }
}

/// The jobs of one Philly virtual cluster, its first submission at 0.
pub fn only_vc(jobs: &[Job], vc: &str) -> Vec<Job> {
    let mut kept: Vec<Job> = jobs.iter().filter(|j| j.vc.as_deref() == Some(vc)).cloned().collect();
    shift_to_zero(&mut kept);
    kept
}

fn check(file: &Path, line: u64, duration: f64, gpus: u32, gpu_column: &str) -> Result<(), JobTraceError> {
    if !(duration.is_finite() && duration > 0.0) {
        return Err(invalid(file, line, "duration", format!("duration {duration} must be positive")));
    }
    if gpus == 0 {
        return Err(invalid(file, line, gpu_column, "a training job needs at least one GPU"));
    }
    Ok(())
}

fn read_itp<R: Read>(
    file: &Path,
    reader: &mut csv::Reader<R>,
    headers: &csv::StringRecord,
) -> Result<Vec<Job>, JobTraceError> {
    let mut jobs = Vec::new();
    for (i, record) in reader.deserialize::<ItpRow>().enumerate() {
        let line = i as u64 + 2;
        let row = record.map_err(|e| row_error(file, headers, &e))?;
        if !row.submission_time.is_finite() || row.submission_time < 0.0 {
            return Err(invalid(file, line, "submission_time", format!("{} is not a time", row.submission_time)));
        }
        check(file, line, row.duration, row.num_gpu, "num_gpu")?;
        jobs.push(Job {
            id: row.job_id,
            submit: row.submission_time,
            duration: row.duration,
            gpus: row.num_gpu,
            vc: None,
        });
    }
    Ok(jobs)
}

fn read_philly<R: Read>(
    file: &Path,
    reader: &mut csv::Reader<R>,
    headers: &csv::StringRecord,
) -> Result<Vec<Job>, JobTraceError> {
    let mut jobs = Vec::new();
    for (i, record) in reader.deserialize::<PhillyRow>().enumerate() {
        let line = i as u64 + 2;
        let row = record.map_err(|e| row_error(file, headers, &e))?;
        let submit = parse_timestamp(&row.timestamp).ok_or_else(|| {
            invalid(file, line, "timestamp", format!("{:?} is not YYYY-MM-DD HH:MM:SS", row.timestamp))
        })?;
        check(file, line, row.duration, row.num_gpus, "num_gpus")?;
        jobs.push(Job {
            id: format!("philly-{line}"),
            submit: submit as f64,
            duration: row.duration,
            gpus: row.num_gpus,
            vc: row.cluster.filter(|c| !c.is_empty()),
        });
    }
    Ok(jobs)
}

/// `YYYY-MM-DD HH:MM:SS` as seconds since 1970-01-01 (the zone is not stated by the trace and does not
/// matter: only differences are used).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(TraceFormat, Vec<Job>), JobTraceError> {
        read_jobs_from(Path::new("t.csv"), text.as_bytes())
    }

    #[test]
    fn itp_rows_parse_and_shift_to_zero() {
        let (format, jobs) =
            read("job_id,submission_time,duration,num_gpu\na,100,600,8\nb,50,700,1\nc,100,800,64\n").unwrap();
        assert_eq!(format, TraceFormat::Itp);
        assert_eq!(jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_eq!(jobs[0].submit, 0.0);
        assert_eq!(jobs[1].submit, 50.0);
        assert_eq!(jobs[2].gpus, 64);
    }

    #[test]
    fn philly_rows_parse_sort_and_name_their_line() {
        let (format, jobs) = read(
            "timestamp,duration,num_gpus,gpu_time,cluster\n\
             2017-10-09 06:13:36,2759.0,1,2759.0,6214e9\n\
             2017-10-09 06:13:03,2951.0,4,11804.0,6214e9\n\
             2017-12-31 23:59:59,10.0,16,160.0,ee9e8c\n",
        )
        .unwrap();
        assert_eq!(format, TraceFormat::Philly);
        assert_eq!(jobs[0].id, "philly-3");
        assert_eq!(jobs[0].gpus, 4);
        assert_eq!(jobs[1].submit, 33.0);
        assert_eq!(jobs[2].submit, (83 * 86_400 + 17 * 3600 + 46 * 60 + 56) as f64);
        assert_eq!(jobs[2].vc.as_deref(), Some("ee9e8c"));
        let ee = only_vc(&jobs, "ee9e8c");
        assert_eq!((ee.len(), ee[0].submit, ee[0].gpus), (1, 0.0, 16));
        assert_eq!(only_vc(&jobs, "6214e9").len(), 2);
        assert!(only_vc(&jobs, "nope").is_empty());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp("2000-03-01 00:00:01"), Some(951_868_801));
        assert_eq!(parse_timestamp("2017-02-29 00:00:00"), None);
        assert_eq!(parse_timestamp("2017-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp("2017-10-09T06:13:03"), None);
        assert_eq!(parse_timestamp("2017-10-09 06:13"), None);
    }

    #[test]
    fn bad_rows_name_file_line_and_column() {
        let err = read("job_id,submission_time,duration,num_gpu\na,1,600,8\nb,2,abc,1\n").unwrap_err().to_string();
        assert!(err.contains("t.csv") && err.contains("line 3") && err.contains("column duration"), "{err}");
        let err = read("job_id,submission_time,duration,num_gpu\na,1,600,0\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("column num_gpu"), "{err}");
        let err = read("job_id,submission_time,duration,num_gpu\na,1,-5,2\n").unwrap_err().to_string();
        assert!(err.contains("column duration"), "{err}");
        let err = read("job_id,submission_time,duration,num_gpu\na,1,600\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("fields"), "{err}");
        let err = read("timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 25:00:00,1.0,1,1.0,x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("column timestamp"), "{err}");
        let err = read("timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 01:00:00,1.0,-1,1.0,x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("column num_gpus"), "{err}");
        assert!(read("a,b\n1,2\n").unwrap_err().to_string().contains("unknown header"));
        assert!(read("job_id,submission_time,duration,num_gpu\n").unwrap_err().to_string().contains("no jobs"));
        let missing = read_jobs(Path::new("/nonexistent/cluster99.csv")).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/cluster99.csv"), "{missing}");
    }
}
