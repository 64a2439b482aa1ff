"""The page served at ``/``: a text box, a Classify button, a temperature control, probability bars, the
decision of the model's saved rule, and the text shaded by each word's attribution (``explain``).

Multi-label models get a bar per label with a mark at its threshold; regression models show the value.

Self-contained (no CDN, no external fonts or scripts), so it works offline.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>m3cls</title>
<style>
body{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#222}
textarea{width:100%;min-height:9em;font:inherit;padding:.5em;box-sizing:border-box}
.row{display:flex;gap:1em;align-items:center;margin:.8em 0;flex-wrap:wrap}
button{font:inherit;padding:.4em 1.4em;cursor:pointer}
.bar{display:flex;align-items:center;gap:.6em;margin:.3em 0}
.bar .name{width:11em;text-align:right;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar .track{flex:1;background:#eee;height:1.3em;border-radius:3px}
.bar .fill{background:#3b7dd8;height:100%;border-radius:3px}
.bar.top .fill{background:#d8823b}
.bar .value{width:4.5em;font-variant-numeric:tabular-nums}
#error{color:#b00020}
#notice{background:#fff3cd;border:1px solid #e0b84c;padding:.5em;margin:.5em 0}
#decision{font-weight:bold}
#explanation{line-height:1.7;white-space:pre-wrap;border-top:1px solid #ddd;padding-top:.6em}
#explanation mark{color:inherit;border-radius:3px}
.bar .track{position:relative}
.bar .mark{position:absolute;top:-3px;bottom:-3px;width:2px;background:#222}
</style></head>
<body>
<h1>m3cls</h1>
<p id="model"></p>
<textarea id="text" placeholder="Text to classify"></textarea>
<div class="row">
  <button id="classify">Classify</button>
  <label>Temperature <input id="temperature" type="number" min="0.01" max="100" step="0.1" value="" style="width:6em"></label>
  <label><input id="explain" type="checkbox"> Explain (shade words; one model pass per word)</label>
  <label id="keybox" hidden>API key <input id="apikey" type="password" style="width:14em"></label>
</div>
<div id="error"></div>
<div id="notice" hidden></div>
<h2 id="result"></h2>
<div id="bars"></div>
<p id="decision"></p>
<div id="explanation"></div>
<script>
const $ = id => document.getElementById(id);
const UNK_WARN = 0.1;  // m3cls.data.inspection.TEXT_UNK_WARN_SHARE
function showNotice(p) {
  const share = p.unknown_token_share || 0;
  $("notice").hidden = !(share > UNK_WARN);
  $("notice").textContent = "Warning: " + (100 * share).toFixed(0) + "% of this text's tokens are unknown to " +
    "the model; its vocabulary most likely does not cover this language, so the prediction is unreliable.";
}
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("apikey").value) h["Authorization"] = "Bearer " + $("apikey").value;
  return h;
}
async function loadLabels() {
  const r = await fetch("labels", {headers: headers()});
  if (r.status === 401) { $("keybox").hidden = false; return; }
  const info = await r.json();
  $("model").textContent = "Labels: " + info.labels.join(", ");
  if (info.task === "regression") $("temperature").parentElement.hidden = true;  // a number has no temperature
  else if (!$("temperature").value) $("temperature").value = info.temperature;
}
function barRow(name, value, top, cut) {
  // one bar: the label, its probability as a filled track and a percentage; a mark at the threshold cut if given
  const row = document.createElement("div");
  row.className = "bar" + (top ? " top" : "");
  row.dataset.label = name;
  row.dataset.probability = value;
  if (cut !== undefined) row.dataset.threshold = cut;
  row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span>' +
                  (cut === undefined ? '' : '<span class="mark"></span>') + '</span><span class="value"></span>';
  row.querySelector(".name").textContent = name;
  row.querySelector(".fill").style.width = (100 * value).toFixed(1) + "%";
  row.querySelector(".fill").style.display = "block";
  if (cut !== undefined) {
    row.querySelector(".mark").style.left = (100 * cut).toFixed(1) + "%";
    row.querySelector(".mark").title = "threshold " + cut.toFixed(3);
  }
  row.querySelector(".value").textContent = (100 * value).toFixed(1) + "%";
  return row;
}
function showBars(p) {
  const bars = $("bars");
  bars.innerHTML = "";
  Object.entries(p.probabilities).forEach(([name, value], i) => bars.appendChild(barRow(name, value, i === 0)));
  $("result").textContent = p.label;
}
function showDecision(p) {
  $("decision").textContent = p.decision === undefined ? "" : "Decision: " + p.decision;
}
function showExplanation(text, attributions) {
  // the text with each scored word in a <mark>: orange pushed toward the label, blue against it
  const box = $("explanation");
  box.innerHTML = "";
  if (!attributions) return;
  const peak = Math.max(1e-12, ...attributions.map(a => Math.abs(a[1])));
  let cursor = 0;
  for (const [word, score] of attributions) {
    const at = text.indexOf(word, cursor);
    if (at < 0) continue;
    box.appendChild(document.createTextNode(text.slice(cursor, at)));
    const mark = document.createElement("mark");
    mark.textContent = word;
    mark.dataset.score = score;
    mark.title = (score >= 0 ? "+" : "") + score.toFixed(4);
    mark.style.background = (score >= 0 ? "rgba(216,130,59," : "rgba(59,125,216,") + (Math.abs(score) / peak).toFixed(3) + ")";
    box.appendChild(mark);
    cursor = at + word.length;
  }
  box.appendChild(document.createTextNode(text.slice(cursor)));
}
async function classify() {
  $("error").textContent = "";
  $("notice").hidden = true;
  const body = {texts: [$("text").value], explain: $("explain").checked};
  const t = parseFloat($("temperature").value);
  if (!isNaN(t)) body.temperature = t;
  const r = await fetch("predict", {method: "POST", headers: headers(), body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) { $("error").textContent = data.error || ("HTTP " + r.status); if (r.status === 401) $("keybox").hidden = false; return; }
  showPrediction(data);
  showNotice(data.predictions[0]);
  showDecision(data.predictions[0]);
  showExplanation(body.texts[0], data.predictions[0].attributions);
}
function showPrediction(data) {
  const p = data.predictions[0];
  if (p.value !== undefined) return showValue(p);
  if (p.labels !== undefined) return showLabelBars(p, data.thresholds || {});
  showBars(p);
}
function showValue(p) {
  // regression: the predicted number, no bars
  $("bars").innerHTML = "";
  $("result").dataset.value = p.value;
  $("result").textContent = "Value: " + Number(p.value).toPrecision(4);
}
function showLabelBars(p, thresholds) {
  // multi-label: one bar per label (its sigmoid) with a mark at its threshold; labels over it stand out
  const bars = $("bars");
  bars.innerHTML = "";
  Object.entries(p.probabilities).forEach(([name, value]) => {
    const cut = thresholds[name] === undefined ? 0.5 : thresholds[name];
    bars.appendChild(barRow(name, value, p.labels.includes(name), cut));
  });
  $("result").textContent = p.labels.length ? p.labels.join(", ") : "(no label over its threshold)";
}
$("classify").addEventListener("click", classify);
$("apikey").addEventListener("change", loadLabels);
loadLabels();
</script>
</body></html>
"""


def _page_headers(page: str) -> dict[str, str]:
    """The page's security headers: its one inline script allowed by hash and nothing else (no other script,
    no framing, requests only to this server)."""
    import base64
    import hashlib

    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    policy = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; connect-src 'self'; "
              f"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


PAGE_HEADERS = _page_headers(PAGE)
