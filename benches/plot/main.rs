//! `holdfast-plot`: PNG plots of the load generator's and the scale tool's
//! JSON, for `docs/performance.md` (`benches/curves.sh` runs it).
//!
//! - `concurrency --series LABEL=FILE …`: from `holdfast-load --sweep`
//!   results, requests/s against concurrency and p50/p99 latency against
//!   concurrency (two PNGs).
//! - `points --series LABEL=FILE …`: from JSON documents with a `points`
//!   array (`holdfast-scale memory --json`, `benches/curves.sh`'s device and
//!   session curves), one numeric field against another.
//!
//! Text is drawn with `ab_glyph` from a TrueType file read at run time
//! (`--font`, by default Debian's `fonts-dejavu-core`): no font is
//! embedded and no system font lookup happens. Bench tooling only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use serde_json::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "holdfast-plot")]
struct Args {
    /// A TrueType font for the text.
    #[arg(
        long,
        global = true,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Throughput and latency against concurrency, from sweeps.
    Concurrency {
        /// `LABEL=FILE`: a `holdfast-load --sweep … --json FILE` result.
        #[arg(long = "series", value_name = "LABEL=FILE", required = true)]
        series: Vec<String>,
        /// Where the throughput plot goes.
        #[arg(long)]
        out_throughput: PathBuf,
        /// Where the latency plot goes.
        #[arg(long)]
        out_latency: PathBuf,
        /// A line under the titles: the machine and the setup.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// One field against another, from `points` arrays.
    Points {
        /// `LABEL=FILE`: a JSON document with a `points` array.
        #[arg(long = "series", value_name = "LABEL=FILE", required = true)]
        series: Vec<String>,
        /// The x field of each point.
        #[arg(long)]
        x: String,
        /// The y field of each point.
        #[arg(long)]
        y: String,
        /// Divide y by this (e.g. 1024 for KiB to MiB).
        #[arg(long, default_value_t = 1.0)]
        y_div: f64,
        /// Axis labels and title.
        #[arg(long)]
        x_label: String,
        #[arg(long)]
        y_label: String,
        #[arg(long)]
        title: String,
        /// A line under the title.
        #[arg(long, default_value = "")]
        note: String,
        /// The plot.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = load_font(&args.font).and_then(|()| match args.command {
        Cmd::Concurrency {
            series,
            out_throughput,
            out_latency,
            note,
        } => concurrency(&series, &out_throughput, &out_latency, &note),
        Cmd::Points {
            series,
            x,
            y,
            y_div,
            x_label,
            y_label,
            title,
            note,
            out,
        } => {
            let lines = series
                .iter()
                .map(|s| {
                    let (label, doc) = labelled(s)?;
                    let points = field_points(&doc, &x, &y, y_div)?;
                    Ok(Line {
                        label,
                        points,
                        dashed: false,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            draw(
                &out,
                &Plot {
                    title: &title,
                    note: &note,
                    x_label: &x_label,
                    y_label: &y_label,
                    log_y: false,
                    x_pow2: false,
                },
                &lines,
            )
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("holdfast-plot: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_font(path: &Path) -> Result<(), Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the font {}: {e} (apt-get install fonts-dejavu-core, or pass --font)",
            path.display()
        )
    })?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{} is not a TrueType font", path.display()).into())
}

fn labelled(spec: &str) -> Result<(String, Value), Error> {
    let (label, file) = spec
        .split_once('=')
        .ok_or_else(|| format!("--series {spec:?}: expected LABEL=FILE"))?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    Ok((label.to_owned(), serde_json::from_str(&text)?))
}

/// One line of a plot.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

fn field_points(doc: &Value, x: &str, y: &str, y_div: f64) -> Result<Vec<(f64, f64)>, Error> {
    let points = doc
        .get("points")
        .and_then(Value::as_array)
        .ok_or("the document has no points array")?;
    Ok(points
        .iter()
        .filter_map(|p| Some((p.get(x)?.as_f64()?, p.get(y)?.as_f64()? / y_div)))
        .collect())
}

fn concurrency(
    series: &[String],
    throughput: &Path,
    latency: &Path,
    note: &str,
) -> Result<(), Error> {
    let mut rates = Vec::new();
    let mut latencies = Vec::new();
    for spec in series {
        let (label, doc) = labelled(spec)?;
        let runs = doc
            .get("sweep")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{label}: not a holdfast-load --sweep result"))?;
        let field = |run: &Value, path: &[&str]| {
            path.iter()
                .try_fold(run, |v, key| v.get(key))
                .and_then(Value::as_f64)
        };
        let mut rate = Vec::new();
        let (mut p50, mut p99) = (Vec::new(), Vec::new());
        for run in runs {
            let Some(c) = field(run, &["concurrency"]) else {
                continue;
            };
            if let Some(r) = field(run, &["ok_per_sec"]) {
                rate.push((c, r));
            }
            if let Some(ms) = field(run, &["latency", "percentiles", "p50_ms"]) {
                p50.push((c, ms));
            }
            if let Some(ms) = field(run, &["latency", "percentiles", "p99_ms"]) {
                p99.push((c, ms));
            }
        }
        rates.push(Line {
            label: label.clone(),
            points: rate,
            dashed: false,
        });
        latencies.push(Line {
            label: format!("{label} p99"),
            points: p99,
            dashed: false,
        });
        latencies.push(Line {
            label: format!("{label} p50"),
            points: p50,
            dashed: true,
        });
    }
    draw(
        throughput,
        &Plot {
            title: "Throughput against concurrency",
            note,
            x_label: "requests in flight (closed loop)",
            y_label: "2xx responses per second",
            log_y: false,
            x_pow2: true,
        },
        &rates,
    )?;
    draw(
        latency,
        &Plot {
            title: "Latency against concurrency",
            note,
            x_label: "requests in flight (closed loop)",
            y_label: "latency, ms (log scale)",
            log_y: true,
            x_pow2: true,
        },
        &latencies,
    )
}

struct Plot<'a> {
    title: &'a str,
    note: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    log_y: bool,
    /// x grows by factors of two (concurrency): ticks at 1, 2, 4, …
    x_pow2: bool,
}

/// The colour of line `i`; its p50 twin (same label prefix) shares it.
fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 5] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
    ];
    PALETTE.get(i % PALETTE.len()).copied().unwrap_or(BLACK)
}

/// Draws `lines` with a log-scale x axis (every x here grows by factors).
fn draw(out: &Path, plot: &Plot<'_>, lines: &[Line]) -> Result<(), Error> {
    if plot.x_pow2 {
        // log2 on a linear axis, so the ticks fall on the powers of two.
        let lines: Vec<Line> = lines
            .iter()
            .map(|l| Line {
                label: l.label.clone(),
                points: l.points.iter().map(|&(x, y)| (x.log2(), y)).collect(),
                dashed: l.dashed,
            })
            .collect();
        return draw_inner(out, plot, &lines);
    }
    draw_inner(out, plot, lines)
}

fn draw_inner(out: &Path, plot: &Plot<'_>, lines: &[Line]) -> Result<(), Error> {
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min > x_max || (x_min <= 0.0 && !plot.x_pow2) {
        return Err(format!("{}: nothing to plot", out.display()).into());
    }
    let root = BitMapBackend::new(out, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(60);
    top.draw(&Text::new(
        plot.title.to_owned(),
        (20, 8),
        ("sans-serif", 24).into_font(),
    ))?;
    top.draw(&Text::new(
        plot.note.to_owned(),
        (20, 38),
        ("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    let mut builder = ChartBuilder::on(&body);
    builder
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80);
    let count = |x: f64| {
        if x >= 1e6 {
            format!("{:.0}M", x / 1e6)
        } else if x >= 1e3 {
            format!("{:.0}k", x / 1e3)
        } else {
            format!("{x:.0}")
        }
    };
    let pow2 = |x: &f64| count(x.exp2());
    let plain = |x: &f64| count(*x);
    let x_fmt: &dyn Fn(&f64) -> String = if plot.x_pow2 { &pow2 } else { &plain };
    let y_fmt = |y: &f64| match *y {
        y if y >= 10.0 || y == 0.0 => format!("{y:.0}"),
        y if y >= 1.0 => format!("{y:.1}"),
        y => format!("{y:.2}"),
    };
    macro_rules! finish {
        ($x_range:expr, $y_range:expr, $ticks:expr) => {{
            let mut chart = builder.build_cartesian_2d($x_range, $y_range)?;
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(plot.x_label)
                .y_desc(plot.y_label)
                .x_label_formatter(x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style(("sans-serif", 14));
            if let Some(ticks) = $ticks {
                mesh.x_labels(ticks);
            }
            mesh.draw()?;
            series(&mut chart, lines)?;
            legend(&mut chart)?;
        }};
    }
    let y_log = (y_min.max(1e-3) / 1.5..y_max * 1.5).log_scale();
    let y_lin = 0.0..y_max * 1.12;
    if plot.x_pow2 {
        let x_range = (x_min - 0.3)..(x_max + 0.3);
        let ticks = Some((x_max - x_min).round() as usize + 1);
        if plot.log_y {
            finish!(x_range, y_log, ticks);
        } else {
            finish!(x_range, y_lin, ticks);
        }
    } else {
        let x_range = (x_min / 1.3..x_max * 1.3).log_scale();
        if plot.log_y {
            finish!(x_range, y_log, None::<usize>);
        } else {
            finish!(x_range, y_lin, None::<usize>);
        }
    }
    root.present()?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn series<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, lines: &[Line]) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate<From = (f64, f64)>,
{
    let mut solid = 0;
    for line in lines {
        // A dashed line is the p50 twin of the solid line before it.
        let c = if line.dashed {
            colour(solid.max(1) - 1)
        } else {
            solid += 1;
            colour(solid - 1)
        };
        let style = c.stroke_width(if line.dashed { 1 } else { 2 });
        let label = line.label.clone();
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(line.points.clone(), 6, 4, style))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(1))
                });
        } else {
            chart
                .draw_series(LineSeries::new(line.points.clone(), style))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2))
                });
        }
        chart
            .draw_series(line.points.iter().map(|p| Circle::new(*p, 3, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}
