// Formatting shared by the views.

export function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export function duration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

// A date and time for tables: the time alone when it is today.
export function datetime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

// Builds an element: el("li", { class: "x" }, child, "text").
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// One line about an event, as the server's /api/activity describes it: the client's name first when known.
export function describe(e, name) {
  // A 64-digit checksum reads as its first 12 digits (the event keeps it whole).
  const line = what(e).replace(/\b([0-9a-f]{12})[0-9a-f]{52}\b/g, "$1…");
  return name ? `${name}: ${line}` : line;
}

function what(e) {
  const d = e.data || {};
  switch (e.type) {
    case "ClientRegistered": return "registered";
    case "ClientUpdated": return "updated";
    case "ClientConnected": return "connected";
    case "ClientDisconnected": return `disconnected (${d.reason})`;
    case "ClientTokenRotated": return "token rotated";
    case "ClientBackupOverdue": return `backup overdue (due ${d.due_at})`;
    case "ClientDeleted": return "deleted";
    case "FileStored": return `stored ${d.filename} (${bytes(d.size)})`;
    case "FileVerified": return d.ok ? "file verified" : `file verification failed: ${d.detail}`;
    case "FileDownloaded": return `file downloaded by ${d.by}`;
    case "FileDeleted": return `file deleted (${d.reason})`;
    case "TransferStarted": return `${d.direction} of ${d.filename} started`;
    case "TransferCompleted": return `transfer completed (${bytes(d.bytes)})`;
    case "TransferFailed": return `transfer failed: ${d.error}`;
    case "LogRecorded": return `[${d.level}] ${d.message}`;
    case "LogsCleared": return `${d.cleared} log lines cleared`;
    case "BlobsPurged": return `${(d.blobs || []).length} contents purged (${d.reason})`;
    case "DatabaseBackupVerified": return d.ok ? `backup ${d.destination} checks out` : `backup ${d.destination} is damaged: ${d.detail}`;
    case "DatabaseBackupRemoved": return `backup ${d.destination} removed (${d.reason})`;
    case "FleetSiteJoined": return `site ${d.site} joined the fleet`;
    case "FleetSiteBroken": return `site ${d.site}'s published log is broken at position ${d.first_bad}: ${d.detail}`;
    case "ArchiveDownloaded": return `archive of ${d.files} files (${bytes(d.bytes)}) as of position ${d.position} downloaded`;
    default: return e.type;
  }
}
