//! The report's chart: weekly vote counts of the last 52 weeks present, the mean and its ±20%
//! band, outlier weeks highlighted, this batch's weeks marked. Drawn with plotters into an RGB
//! buffer and encoded as PNG (mail clients show inline PNG; several block SVG): a title, both
//! axes labelled (weeks, vote count) and a legend, in DejaVu Sans, which the `dejavu` crate
//! carries inside the binary (no system font is read). The numbers are also in the table beside
//! it (`to_html_table`, `to_text_table`).

use std::fmt::Write;
use std::sync::Once;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// One week of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    pub year: i32,
    pub week: i32,
    pub votes: i64,
    /// More than 20% away from the mean (as in `outlier_weeks`).
    pub outlier: bool,
    /// This batch brought votes of this week.
    pub in_batch: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyChart {
    /// Oldest first, at most 52.
    pub weeks: Vec<Week>,
    /// The mean weekly count over every week present (the view's mean).
    pub mean: f64,
}

pub const WIDTH: u32 = 720;
pub const HEIGHT: u32 = 340;
/// The Content-ID the HTML refers to.
pub const CONTENT_ID: &str = "weekly-votes@votewatch";
/// The chart's title.
pub const TITLE: &str = "Weekly votes";

/// An RGB triple, for callers that look at the picture (tests).
pub type Colour = (u8, u8, u8);
pub const NORMAL_RGB: Colour = (70, 110, 170);
pub const OUTLIER_RGB: Colour = (220, 90, 40);

/// Bar colours: a normal week, an outlier, and the batch marker.
pub const NORMAL: RGBColor = RGBColor(NORMAL_RGB.0, NORMAL_RGB.1, NORMAL_RGB.2);
pub const OUTLIER: RGBColor = RGBColor(OUTLIER_RGB.0, OUTLIER_RGB.1, OUTLIER_RGB.2);
const MARK: RGBColor = RGBColor(20, 20, 20);
const BAND: RGBColor = RGBColor(215, 230, 215);
const MEAN: RGBColor = RGBColor(40, 120, 40);

/// The font family every text of the chart uses.
const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters, once per process.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a constant of the binary: it parses, or no chart has text.
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err()
        {
            tracing::error!("the chart's embedded font does not parse; charts have no text");
        }
    });
}

impl WeeklyChart {
    /// The chart as PNG bytes (`WIDTH` × `HEIGHT`, RGB).
    pub fn png(&self) -> Vec<u8> {
        let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
        if let Err(e) = self.draw(&mut buf) {
            tracing::warn!(error = %e, "the weekly chart is incomplete");
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Writing into a Vec cannot fail.
        if let Ok(mut w) = enc.write_header() {
            let _ = w.write_image_data(&buf);
        }
        out
    }

    /// The week at slot `i`, as the x axis labels it (`2022-W04`).
    fn label(&self, i: usize) -> String {
        self.weeks
            .get(i)
            .map(|w| format!("{}-W{:02}", w.year, w.week))
            .unwrap_or_default()
    }

    /// Draws the chart into an RGB buffer of `WIDTH` × `HEIGHT`.
    pub fn draw(&self, buf: &mut [u8]) -> Result<(), String> {
        self.draw_on(BitMapBackend::with_buffer(buf, (WIDTH, HEIGHT)).into_drawing_area())
    }

    /// The chart as an SVG document (`WIDTH` × `HEIGHT`), for the console's pages: the same
    /// picture, text as text. Drawn from numbers and fixed words only.
    pub fn svg(&self) -> String {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
            if let Err(e) = self.draw_on(root) {
                tracing::warn!(error = %e, "the weekly chart is incomplete");
            }
        }
        out
    }

    /// Draws the chart on any of plotters' backends.
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        register_font();
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let n = self.weeks.len().max(1);
        let top = self
            .weeks
            .iter()
            .map(|w| w.votes as f64)
            .fold(self.mean * 1.2, f64::max)
            .max(1.0)
            * 1.25;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{TITLE}, last {}",
                    crate::text::count(n as u64, "week", "weeks")
                ),
                (FONT, 18),
            )
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n).into_segmented(), 0f64..top)
            .map_err(err)?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => self.label(*i),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(6)
            .x_label_formatter(&label)
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("week (year-Www, weeks from Monday)")
            .y_desc("votes")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let x = SegmentValue::Exact;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x(0), self.mean * 0.8), (x(n), self.mean * 1.2)],
                BAND.filled(),
            )))
            .map_err(err)?
            .label("within 20% of the mean")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BAND.filled()));
        let bars = |outlier: bool| {
            self.weeks
                .iter()
                .enumerate()
                .filter(move |(_, w)| w.outlier == outlier)
                .map(move |(i, w)| {
                    let colour = if outlier { OUTLIER } else { NORMAL };
                    let mut r =
                        Rectangle::new([(x(i), 0.0), (x(i + 1), w.votes as f64)], colour.filled());
                    r.set_margin(0, 0, 2, 2);
                    r
                })
        };
        chart
            .draw_series(bars(false))
            .map_err(err)?
            .label("week")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], NORMAL.filled()));
        chart
            .draw_series(bars(true))
            .map_err(err)?
            .label("outlier week (over 20% from the mean)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], OUTLIER.filled()));
        chart
            .draw_series(LineSeries::new(
                [(x(0), self.mean), (x(n), self.mean)],
                MEAN.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("mean ({:.1})", self.mean))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], MEAN.stroke_width(2)));
        chart
            .draw_series(
                self.weeks
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.in_batch)
                    .map(|(i, w)| {
                        TriangleMarker::new(
                            (SegmentValue::CenterOf(i), w.votes as f64 + top * 0.04),
                            5,
                            MARK.filled(),
                        )
                    }),
            )
            .map_err(err)?
            .label("this batch's weeks")
            .legend(|(x, y)| TriangleMarker::new((x + 7, y), 5, MARK.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 11))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)
    }

    /// The numbers behind the chart, for the HTML part.
    pub fn to_html_table(&self) -> String {
        let mut s = String::from(
            "<table border=\"1\" cellpadding=\"3\" style=\"border-collapse: collapse\">\n\
             <tr><th>Year</th><th>Week</th><th>Votes</th><th></th></tr>\n",
        );
        for w in &self.weeks {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                w.year,
                w.week,
                w.votes,
                notes(w)
            );
        }
        let _ = writeln!(
            s,
            "</table>\n<p>Mean {:.1} votes a week; band {:.1} to {:.1}.</p>",
            self.mean,
            self.mean * 0.8,
            self.mean * 1.2
        );
        s
    }

    /// The numbers behind the chart, for the plain-text part.
    pub fn to_text_table(&self) -> String {
        let mut s = format!(
            "Weekly votes, last {} weeks (mean {:.1}; outside {:.1}..{:.1} is an outlier):\n",
            self.weeks.len(),
            self.mean,
            self.mean * 0.8,
            self.mean * 1.2
        );
        for w in &self.weeks {
            let _ = writeln!(
                s,
                "  {} week {:>2}: {:>8}  {}",
                w.year,
                w.week,
                w.votes,
                notes(w)
            );
        }
        s
    }
}

fn notes(w: &Week) -> String {
    let mut v = Vec::new();
    if w.outlier {
        v.push("outlier");
    }
    if w.in_batch {
        v.push("this batch");
    }
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console's chart is the same picture as SVG: its title, both axis descriptions and
    /// the legend are text in it.
    #[test]
    fn the_svg_chart_has_its_title_axes_and_legend() {
        let chart = WeeklyChart {
            weeks: (1..=6)
                .map(|w| Week {
                    year: 2022,
                    week: w,
                    votes: if w == 3 { 40 } else { 10 },
                    outlier: w == 3,
                    in_batch: false,
                })
                .collect(),
            mean: 15.0,
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            "Weekly votes, last 6 weeks",
            "week (year-Www",
            "\nvotes\n</text>",
            "within 20% of the mean",
            "outlier week",
        ] {
            assert!(svg.contains(text), "{text}: {svg}");
        }
    }

    fn chart() -> WeeklyChart {
        let weeks = (0..10)
            .map(|i| Week {
                year: 2022,
                week: i,
                votes: if i == 4 { 300 } else { 100 },
                outlier: i == 4,
                in_batch: i >= 8,
            })
            .collect();
        WeeklyChart { weeks, mean: 120.0 }
    }

    fn pixels() -> Vec<u8> {
        let png_bytes = chart().png();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut img = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut img).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        img
    }

    fn count(
        img: &[u8],
        rows: std::ops::Range<u32>,
        cols: std::ops::Range<u32>,
        c: Colour,
    ) -> usize {
        let mut n = 0;
        for y in rows {
            for x in cols.clone() {
                let i = ((y * WIDTH + x) * 3) as usize;
                n += usize::from((img[i], img[i + 1], img[i + 2]) == c);
            }
        }
        n
    }

    /// The PNG decodes, has the chart's size, and shows the outlier week's bar in the outlier
    /// colour and the others in the normal one.
    #[test]
    fn the_png_decodes_and_highlights_the_outlier_week() {
        let img = pixels();
        let all = 0..HEIGHT;
        let outlier = count(&img, all.clone(), 0..WIDTH, OUTLIER_RGB);
        let normal = count(&img, all, 0..WIDTH, NORMAL_RGB);
        // Nine normal bars of 100 votes and one outlier of 300: three times the height.
        assert!(outlier > 1000, "{outlier}");
        assert!(normal > 2 * outlier, "{normal} vs {outlier}");
        let text = chart().to_text_table();
        assert!(text.contains("2022 week  4:      300  outlier"), "{text}");
        assert!(text.contains("week  9:      100  this batch"), "{text}");
    }

    /// The chart has text: the embedded font is registered and every label, the title and the
    /// legend are drawn (a missing font is an error from `draw`, and leaves the margins white).
    #[test]
    fn the_chart_has_a_title_axis_labels_and_a_legend_in_the_embedded_font() {
        let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
        chart().draw(&mut buf).expect("every element drawn");
        let dark = |rows: std::ops::Range<u32>, cols: std::ops::Range<u32>| {
            let mut n = 0;
            for y in rows {
                for x in cols.clone() {
                    let i = ((y * WIDTH + x) * 3) as usize;
                    n += usize::from(buf[i] < 100 && buf[i + 1] < 100 && buf[i + 2] < 100);
                }
            }
            n
        };
        // The title, above the plot; the y axis' numbers and name, left of it; the weeks and
        // the x axis' name, below it.
        assert!(dark(0..26, 0..WIDTH) > 50, "no title");
        assert!(dark(40..HEIGHT - 60, 0..40) > 50, "no y labels");
        assert!(dark(HEIGHT - 36..HEIGHT, 80..WIDTH) > 100, "no x labels");
        let lbl = chart().label(4);
        assert_eq!(lbl, "2022-W04");
        assert!(
            plotters::style::FontDesc::new(FONT.into(), 12.0, FontStyle::Normal)
                .box_size("votes")
                .is_ok_and(|(w, _)| w > 10)
        );
    }
}
