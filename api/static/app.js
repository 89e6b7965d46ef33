// The verdict page: submits the image, the sentences and the optional premise
// to POST /v1/jobs, waits for the job with GET /v1/jobs/{id}?wait=30 and shows
// each verdict; offers the api's example photos (GET /examples). Public API
// only; no other server is contacted.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("form"), fileInput = $("image"), drop = $("drop"), preview = $("preview");
const textsInput = $("texts"), premiseInput = $("premise"), tokenInput = $("token"), button = $("submit");
const statusLine = $("status"), errorBox = $("error"), results = $("results");
const cancelButton = $("cancel"), clearButton = $("clear");
let picked = null;
// The job being waited for, so that it can be cancelled while it is queued.
let current = null;

// What the api decodes; anything else is refused here, before any upload.
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"];
const IMAGE_EXTENSIONS = /\.(png|jpe?g|gif|webp|bmp|tiff?)$/i;

tokenInput.value = localStorage.getItem("verdict-token") || "";
tokenInput.addEventListener("change", () => localStorage.setItem("verdict-token", tokenInput.value.trim()));

function pick(file) {
  if (!file) return;
  if (!IMAGE_TYPES.includes(file.type) && !IMAGE_EXTENSIONS.test(file.name)) {
    // Said plainly, and nothing else changes: the picked image and the
    // verdicts on the page stay.
    fileInput.value = "";
    return showError({
      code: "not_an_image",
      message: `${file.name} is not an image verdict can read: pick a PNG, JPEG, GIF, WebP, BMP or TIFF file`,
    });
  }
  errorBox.hidden = true;
  picked = file;
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-hint").textContent = `${file.name} (${Math.round(file.size / 1024)} KB): drop or click to change`;
}
fileInput.addEventListener("change", () => pick(fileInput.files[0]));
["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (event) => {
  event.preventDefault();
  drop.classList.add("over");
}));
["dragleave", "drop"].forEach((type) => drop.addEventListener(type, (event) => {
  event.preventDefault();
  drop.classList.remove("over");
}));
drop.addEventListener("drop", (event) => pick(event.dataTransfer.files[0]));

function headers() {
  const token = tokenInput.value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// A fresh Idempotency-Key for one submission: if the answer is lost (the api
// restarted, the network dropped), the page sends the same request again with
// the same key, and the api answers with the job the first try created
// instead of making a second one (docs/reliability.md).
function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes); // available without a secure context, unlike randomUUID
  return "page-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// POST /v1/jobs, tried up to three times while the api cannot be reached.
async function submitJob(body) {
  const key = newIdempotencyKey();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch("/v1/jobs", {
        method: "POST",
        body,
        headers: { ...headers(), "Idempotency-Key": key },
      });
    } catch (error) {
      if (attempt >= 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

// An API error as {code, message}, whatever came back.
async function apiError(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return { code: `http_${response.status}`, message: response.statusText || "the server refused the request" };
}

function showError(error) {
  errorBox.replaceChildren();
  const code = document.createElement("code");
  code.textContent = error.code;
  errorBox.append(code, document.createTextNode(`: ${error.message}`));
  errorBox.hidden = false;
}

function percent(x) {
  return `${Math.round(x * 100)}%`;
}

function labelList(items) {
  return (items || []).slice(0, 3).map((item) => `${item.label} (${percent(item.score)})`).join(", ");
}

function render(result) {
  const card = document.createElement("article");
  card.className = "verdict";
  card.dataset.label = result.label;

  const head = document.createElement("div");
  head.className = "verdict-head";
  const sentence = document.createElement("span");
  sentence.className = "sentence";
  sentence.textContent = result.text;
  const badge = document.createElement("span");
  badge.className = `badge badge-${result.label}`;
  badge.textContent = result.label;
  // The answer first: the eye finds the badge before the sentence.
  head.append(badge, sentence);

  const bars = document.createElement("div");
  bars.className = "bars";
  for (const label of ["yes", "no", "maybe"]) {
    const score = result.scores[label];
    const name = document.createElement("span");
    name.textContent = label;
    const bar = document.createElement("div");
    bar.className = `bar bar-${label}`;
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-label", `${label} score`);
    // A share, 0 to 1, read out as a percentage.
    bar.setAttribute("aria-valuenow", score.toFixed(3));
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "1");
    bar.setAttribute("aria-valuetext", percent(score));
    const fill = document.createElement("span");
    fill.style.width = percent(score);
    bar.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = percent(score);
    bars.append(name, bar, pct);
  }

  const why = document.createElement("p");
  why.className = "why";
  const explanation = result.explanation || {};
  const parts = [];
  if (explanation.image_labels && explanation.image_labels.length) {
    parts.push(["The image looks like: ", labelList(explanation.image_labels)]);
  }
  if (explanation.sentence_labels && explanation.sentence_labels.length) {
    parts.push(["The sentence is closest to: ", labelList(explanation.sentence_labels)]);
  }
  for (const [title, text] of parts) {
    const b = document.createElement("b");
    b.textContent = title;
    why.append(b, document.createTextNode(text), document.createElement("br"));
  }
  if (explanation.summary) {
    // The lists above already say what the image looks like and what the
    // sentence is closest to: the summary's sentences that repeat them go.
    const repeats = (s) => parts.length > 0 && /^The (image looks like|sentence is closest to)\b/.test(s);
    const rest = explanation.summary.split(/(?<=\.)\s+/).filter((s) => !repeats(s)).join(" ");
    if (rest) {
      const summary = document.createElement("span");
      summary.className = "summary";
      summary.textContent = rest;
      why.append(summary);
    }
  }

  card.append(head, bars, why);
  return card;
}

/** Why a queued job does not move, from /readyz: a sentence, or "". */
async function whyWaiting() {
  try {
    const ready = await fetch("/readyz");
    if (ready.ok) return "";
    const body = await ready.json();
    const noWorker = body.error && body.error.code === "not_ready" && (body.workers || []).length === 0;
    return noWorker ? " — no worker is running: the job waits until one starts" : "";
  } catch (error) {
    return "";
  }
}

async function judge(event) {
  event.preventDefault();
  errorBox.hidden = true;
  const texts = textsInput.value.split("\n").map((t) => t.trim()).filter((t) => t.length > 0);
  if (!picked) return showError({ code: "missing_image", message: "pick or drop an image first" });
  if (texts.length === 0) return showError({ code: "missing_text", message: "type at least one sentence" });

  const body = new FormData();
  body.append("image", picked, picked.name);
  texts.forEach((text) => body.append("text", text));
  const premise = premiseInput.value.trim();
  if (premise) body.append("premise", premise);
  button.disabled = true;
  results.replaceChildren();
  statusLine.textContent = "submitting…";
  try {
    const submitted = await submitJob(body);
    if (!submitted.ok) return showError(await apiError(submitted));
    let job = await submitted.json();
    current = job.id;
    const started = Date.now();
    let why = "";
    while (!["done", "failed", "cancelled"].includes(job.state)) {
      statusLine.textContent = `${job.state}… (${Math.round((Date.now() - started) / 1000)} s)${why}`;
      cancelButton.hidden = job.state !== "queued";
      // A queued job is looked at more often, to say why it waits.
      const wait = job.state === "queued" ? 5 : 30;
      const polled = await fetch(`/v1/jobs/${job.id}?wait=${wait}`, { headers: headers() });
      if (!polled.ok) return showError(await apiError(polled));
      job = await polled.json();
      why = job.state === "queued" ? await whyWaiting() : "";
    }
    statusLine.textContent = job.state;
    if (job.state !== "done") {
      return showError(job.error || { code: job.state, message: `the job ended ${job.state}` });
    }
    results.replaceChildren(...job.results.map(render));
  } catch (error) {
    showError({ code: "network", message: `the api could not be reached (${error.message})` });
  } finally {
    current = null;
    cancelButton.hidden = true;
    button.disabled = false;
    if (statusLine.textContent.includes("…")) statusLine.textContent = "";
  }
}
form.addEventListener("submit", judge);

// Cancel the queued job: the wait above then sees it end, cancelled.
cancelButton.addEventListener("click", async () => {
  if (!current) return;
  cancelButton.disabled = true;
  try {
    const answer = await fetch(`/v1/jobs/${current}/cancel`, { method: "POST", headers: headers() });
    if (!answer.ok) showError(await apiError(answer));
  } catch (error) {
    showError({ code: "network", message: `the api could not be reached (${error.message})` });
  } finally {
    cancelButton.disabled = false;
  }
});

// Start over: no image, no sentences, no verdicts.
clearButton.addEventListener("click", () => {
  form.reset();
  tokenInput.value = localStorage.getItem("verdict-token") || "";
  picked = null;
  preview.hidden = true;
  preview.removeAttribute("src");
  $("drop-hint").textContent = "Drop an image here, click to pick one, or paste one";
  results.replaceChildren();
  errorBox.hidden = true;
  if (!current) statusLine.textContent = "";
});

// An image pasted anywhere on the page (Ctrl-V after a screenshot or a copy).
document.addEventListener("paste", (event) => {
  const items = event.clipboardData ? Array.from(event.clipboardData.files) : [];
  const image = items.find((file) => file.type.startsWith("image/"));
  if (!image) return;
  event.preventDefault();
  pick(new File([image], image.name || "pasted.png", { type: image.type }));
});

// The api's example photos (GET /examples), one thumbnail button each: a
// click puts the photo in the form as if it had been picked, and its
// sentences in the box. The row stays hidden when the api has none.
async function showExamples() {
  let examples = [];
  try {
    const answer = await fetch("/examples");
    if (!answer.ok) return;
    examples = (await answer.json()).examples || [];
  } catch (_) {
    return; // the page works without them
  }
  if (examples.length === 0) return;
  const row = $("example-list");
  for (const example of examples) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "example";
    button.title = example.texts.join("\n");
    const thumbnail = document.createElement("img");
    thumbnail.src = example.url;
    // The button's accessible name: what the photo shows.
    thumbnail.alt = example.alt;
    button.append(thumbnail);
    button.addEventListener("click", () => useExample(example));
    row.append(button);
  }
  $("examples").hidden = false;
}

async function useExample(example) {
  try {
    const answer = await fetch(example.url);
    if (!answer.ok) return showError(await apiError(answer));
    const blob = await answer.blob();
    pick(new File([blob], example.image, { type: blob.type }));
  } catch (error) {
    return showError({ code: "network", message: `the api could not be reached (${error.message})` });
  }
  textsInput.value = example.texts.join("\n");
  premiseInput.value = "";
  // The verdicts on the page were about other sentences.
  results.replaceChildren();
  if (!current) statusLine.textContent = `${example.image} and ${example.texts.length} sentences are in the form: press Judge`;
}
showExamples();
