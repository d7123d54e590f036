import Foundation

/// A line or scatter chart drawn as inline SVG (no scripts, no fonts fetched), for `t5 report`.
///
/// The root `<svg>` carries `data-plot="left top width height"` (the plotting area in pixels) and
/// `data-domain="x0 x1 y0 y1"` (the data range it spans; x in log10 when `logX`), so a reader can map any
/// path's coordinates back to data: x = x0 + (px - left) / width · (x1 - x0), y likewise from the bottom.
package struct Chart: Sendable {
    package struct Series: Sendable {
        package var name: String
        package var points: [(x: Double, y: Double)]
        /// Drawn grey and behind the others (a pruned or failed trial).
        package var muted = false
        /// Dots instead of a line (a scatter plot).
        package var dots = false
        /// A line with a dot at each point (evaluations, which may be a single point).
        package var markers = false
        /// An id written as `data-series` (a trial number).
        package var id: String?

        package init(name: String, points: [(x: Double, y: Double)], muted: Bool = false, dots: Bool = false, markers: Bool = false, id: String? = nil) {
            self.name = name
            self.points = points
            self.muted = muted
            self.dots = dots
            self.markers = markers
            self.id = id
        }
    }

    package var title: String
    package var xLabel: String
    package var yLabel: String
    package var series: [Series]
    /// A log10 x axis (a learning rate drawn from a log-uniform range).
    package var logX = false
    /// Names of x = 0, 1, 2, ... for a categorical axis (a `choice` hyperparameter).
    package var xCategories: [String]?
    package var legend = true
    /// The y axis starts at 0 (rates, fractions).
    package var includeZero = false

    package init(title: String, xLabel: String, yLabel: String, series: [Series], logX: Bool = false, xCategories: [String]? = nil,
                 legend: Bool = true, includeZero: Bool = false) {
        self.includeZero = includeZero
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logX = logX
        self.xCategories = xCategories
        self.legend = legend
    }

    static let width = 560.0, height = 330.0
    static let left = 70.0, right = 16.0, top = 44.0, bottom = 46.0
    /// Colour-blind-safe palette (Okabe & Ito 2008).
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    package var svg: String {
        let plotW = Self.width - Self.left - Self.right, plotH = Self.height - Self.top - Self.bottom
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\" viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\""
        guard !points.isEmpty else {
            return out + "><text x=\"\(Self.width / 2)\" y=\"\(Self.height / 2)\" text-anchor=\"middle\" class=\"title\">\(escape(title)): no data</text></svg>"
        }
        func tx(_ x: Double) -> Double { logX ? log10(x) : x }
        var (x0, x1) = (points.map { tx($0.x) }.min()!, points.map { tx($0.x) }.max()!)
        var (y0, y1) = (points.map(\.y).min()!, points.map(\.y).max()!)
        if let categories = xCategories { (x0, x1) = (-0.5, Double(categories.count) - 0.5) }
        if x0 == x1 { (x0, x1) = (x0 - 1, x1 + 1) }
        if y0 == y1 { (y0, y1) = (y0 - max(abs(y0) * 0.1, 1e-3), y1 + max(abs(y1) * 0.1, 1e-3)) }
        if includeZero { (y0, y1) = (min(y0, 0), max(y1, 0)) }
        // A little room around the data, so markers at the ends are not cut by the axes.
        let yPad = (y1 - y0) * 0.04
        (y0, y1) = (includeZero && y0 == 0 ? 0 : y0 - yPad, y1 + yPad)
        if xCategories == nil {
            let xPad = (x1 - x0) * 0.02
            (x0, x1) = (x0 - xPad, x1 + xPad)
        }
        func px(_ x: Double) -> Double { Self.left + (tx(x) - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { Self.top + plotH - (y - y0) / (y1 - y0) * plotH }
        out += " data-plot=\"\(Self.left) \(Self.top) \(plotW) \(plotH)\" data-domain=\"\(x0) \(x1) \(y0) \(y1)\">\n"
        out += "<text class=\"title\" x=\"\(Self.left)\" y=\"18\">\(escape(title))</text>\n"
        // Axes, grid and ticks.
        out += "<g class=\"axis x\"><line x1=\"\(Self.left)\" y1=\"\(Self.top + plotH)\" x2=\"\(Self.left + plotW)\" y2=\"\(Self.top + plotH)\"/>"
        var xTicks: [(Double, String)] = xCategories.map { $0.enumerated().map { (Double($0.offset), $0.element) } }
            ?? Self.ticks(x0, x1).map { ($0, Self.label($0)) }
        if logX {
            // Powers of ten where there are two or more, else the plain ticks of the exponent.
            let decades = Self.ticks(x0, x1).filter { $0 == $0.rounded() }
            xTicks = (decades.count >= 2 ? decades : Self.ticks(x0, x1)).map { ($0, Self.label(pow(10, $0))) }
        }
        for (x, text) in xTicks {
            let p = r(Self.left + (x - x0) / (x1 - x0) * plotW)
            out += "<line class=\"grid\" x1=\"\(p)\" y1=\"\(Self.top)\" x2=\"\(p)\" y2=\"\(Self.top + plotH)\"/><text x=\"\(p)\" y=\"\(Self.top + plotH + 16)\" text-anchor=\"middle\">\(escape(text))</text>"
        }
        out += "<text class=\"label\" x=\"\(Self.left + plotW / 2)\" y=\"\(Self.height - 8)\" text-anchor=\"middle\">\(escape(xLabel))</text></g>\n"
        out += "<g class=\"axis y\"><line x1=\"\(Self.left)\" y1=\"\(Self.top)\" x2=\"\(Self.left)\" y2=\"\(Self.top + plotH)\"/>"
        for (y, text) in Self.ticks(y0, y1).map({ ($0, Self.label($0)) }) {
            let v = Self.top + plotH - (y - y0) / (y1 - y0) * plotH, p = r(v)
            out += "<line class=\"grid\" x1=\"\(Self.left)\" y1=\"\(p)\" x2=\"\(Self.left + plotW)\" y2=\"\(p)\"/><text x=\"\(Self.left - 6)\" y=\"\(r(v + 4))\" text-anchor=\"end\">\(escape(text))</text>"
        }
        out += "<text class=\"label\" transform=\"translate(14 \(Self.top + plotH / 2)) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text></g>\n"
        // Muted series first, so the others draw over them.
        var colour = 0
        let ordered = series.enumerated().sorted { a, b in
            let (ka, kb) = (a.element.muted ? 0 : 1, b.element.muted ? 0 : 1)
            return ka != kb ? ka < kb : a.offset < b.offset
        }
        var legendEntries = [(String, String)]()
        for (_, s) in ordered {
            let stroke = s.muted ? "#bbbbbb" : Self.palette[colour % Self.palette.count]
            if !s.muted { colour += 1 }
            let visible = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
            let idAttribute = s.id.map { " data-series=\"\(escape($0))\"" } ?? ""
            let cls = "series" + (s.muted ? " muted" : "")
            if s.dots {
                out += "<g class=\"\(cls)\"\(idAttribute) fill=\"\(stroke)\">"
                for p in visible { out += "<circle cx=\"\(r(px(p.x)))\" cy=\"\(r(py(p.y)))\" r=\"4\"/>" }
                out += "</g>\n"
            } else if !visible.isEmpty {
                let d = visible.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(r(px($0.element.x))),\(r(py($0.element.y)))" }.joined(separator: " ")
                out += "<path class=\"\(cls)\"\(idAttribute) d=\"\(d)\" stroke=\"\(stroke)\" fill=\"none\" stroke-width=\"\(s.muted ? 1.2 : 1.8)\"/>\n"
                if s.markers {
                    out += "<g class=\"markers\" fill=\"\(stroke)\">"
                    for p in visible { out += "<circle cx=\"\(r(px(p.x)))\" cy=\"\(r(py(p.y)))\" r=\"3\"/>" }
                    out += "</g>\n"
                }
            }
            if !legendEntries.contains(where: { $0.0 == (s.muted ? "pruned or failed" : s.name) }) {
                legendEntries.append((s.muted && !s.dots ? "pruned or failed" : s.name, stroke))
            }
        }
        // One row between the title and the plot, so it never covers data: the coloured series, and one grey
        // entry for all muted ones.
        if legend {
            let muted = legendEntries.filter { $0.1 == "#bbbbbb" }, coloured = legendEntries.filter { $0.1 != "#bbbbbb" }
            var x = Self.left
            for (name, stroke) in (coloured + muted.prefix(1)) {
                let width = Double(name.count) * 6.2 + 26
                if x + width > Self.width - Self.right { break }
                out += "<g class=\"legend\"><rect x=\"\(r(x))\" y=\"26\" width=\"10\" height=\"10\" fill=\"\(stroke)\"/><text x=\"\(r(x + 14))\" y=\"35\">\(escape(name))</text></g>\n"
                x += width
            }
        }
        return out + "</svg>"
    }

    private func r(_ v: Double) -> String { String(format: "%.2f", v) }

    /// Four to ten round tick values (1, 2 or 5 times a power of ten apart) within [a, b].
    static func ticks(_ a: Double, _ b: Double) -> [Double] {
        let raw = (b - a) / 7
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = ceil(a / step) * step
        var result = [Double]()
        while t <= b + step * 1e-9 {
            result.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return result
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e7 || a < 1e-3 { return String(format: "%.0e", v) }
        if a >= 1e4 { return label(v / 1000) + "k" }
        if a >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.2g", v) == String(format: "%.0f", v) ? String(format: "%.0f", v) : String(format: "%.3g", v) }
        return String(format: "%.3g", v)
    }
}

/// The trailing mean of the last `window` points at each point, for per-step series too noisy to read
/// (training loss, tokens/s); the first points average what there is.
package func smoothed(_ points: [(x: Double, y: Double)], window: Int) -> [(x: Double, y: Double)] {
    guard window > 1 else { return points }
    var sum = 0.0
    return points.indices.map { i in
        sum += points[i].y
        if i >= window { sum -= points[i - window].y }
        return (points[i].x, sum / Double(min(i + 1, window)))
    }
}

/// Text for XML and HTML.
package func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
