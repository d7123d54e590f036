import Foundation

/// A line or scatter chart drawn as inline SVG (no scripts, no fonts fetched), for `t5 report`.
///
/// The root `<svg>` carries `data-plot="left top width height"` (the plotting area in pixels) and
/// `data-domain="x0 x1 y0 y1"` (the data range it spans; y in log10 when `logY`), so a reader can map any
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
    package var logY = false
    /// Names of x = 0, 1, 2, ... for a categorical axis (a `choice` hyperparameter).
    package var xCategories: [String]?
    package var legend = true

    package init(title: String, xLabel: String, yLabel: String, series: [Series], logY: Bool = false, xCategories: [String]? = nil, legend: Bool = true) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logY = logY
        self.xCategories = xCategories
        self.legend = legend
    }

    static let width = 560.0, height = 330.0
    static let left = 70.0, right = 16.0, top = 30.0, bottom = 46.0
    /// Colour-blind-safe palette (Okabe & Ito 2008).
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    package var svg: String {
        let plotW = Self.width - Self.left - Self.right, plotH = Self.height - Self.top - Self.bottom
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\" viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\""
        guard !points.isEmpty else {
            return out + "><text x=\"\(Self.width / 2)\" y=\"\(Self.height / 2)\" text-anchor=\"middle\" class=\"title\">\(escape(title)): no data</text></svg>"
        }
        func ty(_ y: Double) -> Double { logY ? log10(y) : y }
        var (x0, x1) = (points.map(\.x).min()!, points.map(\.x).max()!)
        var (y0, y1) = (points.map { ty($0.y) }.min()!, points.map { ty($0.y) }.max()!)
        if let categories = xCategories { (x0, x1) = (-0.5, Double(categories.count) - 0.5) }
        if x0 == x1 { (x0, x1) = (x0 - 1, x1 + 1) }
        if y0 == y1 { (y0, y1) = (y0 - (logY ? 0.5 : max(abs(y0) * 0.1, 1e-3)), y1 + (logY ? 0.5 : max(abs(y1) * 0.1, 1e-3))) }
        let yPad = (y1 - y0) * 0.04
        (y0, y1) = (y0 - yPad, y1 + yPad)
        func px(_ x: Double) -> Double { Self.left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { Self.top + plotH - (ty(y) - y0) / (y1 - y0) * plotH }
        out += " data-plot=\"\(Self.left) \(Self.top) \(plotW) \(plotH)\" data-domain=\"\(x0) \(x1) \(y0) \(y1)\">\n"
        out += "<text class=\"title\" x=\"\(Self.left)\" y=\"18\">\(escape(title))</text>\n"
        // Axes, grid and ticks.
        out += "<g class=\"axis x\"><line x1=\"\(Self.left)\" y1=\"\(Self.top + plotH)\" x2=\"\(Self.left + plotW)\" y2=\"\(Self.top + plotH)\"/>"
        let xTicks: [(Double, String)] = xCategories.map { $0.enumerated().map { (Double($0.offset), $0.element) } }
            ?? Self.ticks(x0, x1).map { ($0, Self.label($0)) }
        for (x, text) in xTicks {
            let p = r(px(x))
            out += "<line class=\"grid\" x1=\"\(p)\" y1=\"\(Self.top)\" x2=\"\(p)\" y2=\"\(Self.top + plotH)\"/><text x=\"\(p)\" y=\"\(Self.top + plotH + 16)\" text-anchor=\"middle\">\(escape(text))</text>"
        }
        out += "<text class=\"label\" x=\"\(Self.left + plotW / 2)\" y=\"\(Self.height - 8)\" text-anchor=\"middle\">\(escape(xLabel))</text></g>\n"
        out += "<g class=\"axis y\"><line x1=\"\(Self.left)\" y1=\"\(Self.top)\" x2=\"\(Self.left)\" y2=\"\(Self.top + plotH)\"/>"
        let yTicks = logY ? Self.ticks(y0, y1).filter { $0 == $0.rounded() }.map { ($0, Self.label(pow(10, $0))) } : Self.ticks(y0, y1).map { ($0, Self.label($0)) }
        for (y, text) in (logY && yTicks.count < 2 ? Self.ticks(y0, y1).map { ($0, Self.label(pow(10, $0))) } : yTicks) {
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
            let visible = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
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
            legendEntries.append((s.name, stroke))
        }
        if legend && series.count <= 8 {
            for (i, (name, stroke)) in legendEntries.enumerated() {
                let y = Self.top + 6 + Double(i) * 15
                out += "<g class=\"legend\"><rect x=\"\(Self.left + plotW - 150)\" y=\"\(y)\" width=\"10\" height=\"10\" fill=\"\(stroke)\"/><text x=\"\(Self.left + plotW - 135)\" y=\"\(y + 9)\">\(escape(name))</text></g>\n"
            }
        }
        return out + "</svg>"
    }

    private func r(_ v: Double) -> String { String(format: "%.2f", v) }

    /// About five round tick values (1, 2 or 5 times a power of ten apart) within [a, b].
    static func ticks(_ a: Double, _ b: Double) -> [Double] {
        let raw = (b - a) / 5
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
        if a >= 1e5 || a < 1e-3 { return String(format: "%.0e", v) }
        if a >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.2g", v) == String(format: "%.0f", v) ? String(format: "%.0f", v) : String(format: "%.3g", v) }
        return String(format: "%.3g", v)
    }
}

/// Text for XML and HTML.
package func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
