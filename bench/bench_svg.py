"""The scaling chart as SVG text (no plotting library): packets forwarded per CPU-second
against calls up (log scale), one line per mode and GRE direction, one panel per payload
size; the median with its min-max as a bar. Takes bench_report.summary_rows().
"""
import math
from xml.sax.saxutils import escape

PANEL_W, PANEL_H = 460, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 56, 50
LEGEND_H = 22
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
DASH = {"s2c": "", "c2s": "6,4"}


def nice_step(top, ticks=5):
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def x_scale(calls_values, width):
    lo, hi = math.log10(min(calls_values)), math.log10(max(calls_values))
    if hi - lo < 1e-9:  # one number of calls: a point in the middle
        return lambda c: width / 2
    pad = 0.08 * (hi - lo)
    return lambda c: (math.log10(c) - lo + pad) / (hi - lo + 2 * pad) * width


def panel(rows, payload, series, offset_x, y_top):
    """One payload size: axes, grid, and a polyline with min-max bars per series."""
    mine = [r for r in rows if r["payload"] == payload]
    w, h = PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM
    x0, y0 = offset_x + LEFT, TOP
    calls_values = sorted({r["calls"] for r in mine})
    xs = x_scale(calls_values, w)
    step = nice_step(y_top)
    top = step * math.ceil(y_top / step)

    def y(v):
        return y0 + h - v / top * h

    out = ['<text x="%d" y="%d" text-anchor="middle" font-weight="bold">%d-byte payload</text>'
           % (x0 + w / 2, TOP - 12, payload)]
    tick = 0.0
    while tick <= top + 1e-9:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (x0, y(tick), x0 + w, y(tick)))
        out.append('<text x="%d" y="%.1f" text-anchor="end" font-size="11">%s</text>'
                   % (x0 - 6, y(tick) + 4, "{:,.0f}".format(tick)))
        tick += step
    for c in calls_values:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x0 + xs(c), y0, x0 + xs(c), y0 + h))
        out.append('<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>'
                   % (x0 + xs(c), y0 + h + 16, "{:,}".format(c)))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>' % (x0, y0, w, h))
    out.append('<text x="%d" y="%d" text-anchor="middle" font-size="12">calls up (log scale)</text>'
               % (x0 + w / 2, y0 + h + 36))
    out.append('<text transform="translate(%d,%d) rotate(-90)" text-anchor="middle" font-size="12">'
               'packets per CPU-second</text>' % (offset_x + 14, y0 + h / 2))
    for (label, direction), colour in series.items():
        points = sorted((r["calls"], r) for r in mine if r["label"] == label and r["direction"] == direction)
        if not points:
            continue
        coords = " ".join("%.1f,%.1f" % (x0 + xs(c), y(r["per_cpu_second"])) for c, r in points)
        dash = ' stroke-dasharray="%s"' % DASH[direction] if DASH.get(direction) else ""
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (coords, colour, dash))
        for c, r in points:
            px = x0 + xs(c)
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>'
                       % (px, y(r["per_cpu_second_min"]), px, y(r["per_cpu_second_max"]), colour))
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px, y(r["per_cpu_second"]), colour))
    return out


def legend(series, width, y_start):
    out, x, y = [], 20, y_start
    for (label, direction), colour in series.items():
        text = "%s, %s" % (label, direction)
        item_w = 40 + 7 * len(text)
        if x + item_w > width:
            x, y = 20, y + LEGEND_H
        dash = ' stroke-dasharray="%s"' % DASH[direction] if DASH.get(direction) else ""
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
                   % (x, y - 4, x + 28, y - 4, colour, dash))
        out.append('<text x="%d" y="%d" font-size="12">%s</text>' % (x + 34, y, escape(text)))
        x += item_w
    return out, y


def chart(rows, title):
    """The whole SVG document as text."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    directions = list(dict.fromkeys(r["direction"] for r in rows))
    series = {(label, d): COLOURS[i % len(COLOURS)] for i, label in enumerate(labels) for d in directions}
    payloads = sorted({r["payload"] for r in rows})
    width = max(PANEL_W * len(payloads), 7 * len(title) + 40)  # the title fits over one panel too
    y_top = max(r["per_cpu_second_max"] for r in rows) * 1.05 or 1
    body = []
    for i, payload in enumerate(payloads):
        body += panel(rows, payload, series, i * PANEL_W, y_top)
    legend_body, last_y = legend(series, width, PANEL_H + 10)
    height = last_y + 16
    head = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="sans-serif" font-size="13">' % (width, height, width, height),
            '<title>%s</title>' % escape(title),
            '<rect width="100%" height="100%" fill="white"/>',
            '<text x="%d" y="16" text-anchor="middle" font-size="13">%s</text>' % (width / 2, escape(title))]
    return "\n".join(head + body + legend_body + ["</svg>"]) + "\n"
