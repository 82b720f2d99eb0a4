/** Line icons drawn as inline SVG (no icon font, nothing fetched at run time). */

const PATHS: Record<string, string> = {
  mic: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z M5 11a7 7 0 0 0 14 0 M12 18v3",
  micOff: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z M5 11a7 7 0 0 0 14 0 M12 18v3 M3 3l18 18",
  cam: "M3 7h12v10H3z M15 10l6-3v10l-6-3",
  camOff: "M3 7h12v10H3z M15 10l6-3v10l-6-3 M3 3l18 18",
  screen: "M3 4h18v12H3z M8 20h8 M12 16v4",
  chat: "M4 5h16v11H9l-5 4z",
  people: "M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6z M3 20a6 6 0 0 1 12 0 M16 11a3 3 0 1 0 0-6 M17 14a6 6 0 0 1 4 6",
  leave: "M10 17l-5-5 5-5 M5 12h11 M14 4h5v16h-5",
  stop: "M6 6h12v12H6z",
  download: "M12 4v11 M7 10l5 5 5-5 M5 20h14",
  hand: "M8 13V5a1.5 1.5 0 0 1 3 0v6 M11 11V4a1.5 1.5 0 0 1 3 0v7 M14 11V5a1.5 1.5 0 0 1 3 0v7 M17 12V8a1.5 1.5 0 0 1 3 0v6a7 7 0 0 1-7 7h-1a6 6 0 0 1-5-3l-3-5a1.5 1.5 0 0 1 2.5-1.6L8 13",
  smile: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z M8 14a5 5 0 0 0 8 0 M9 9.5h.01 M15 9.5h.01",
  screenShare: "M3 4h18v12H3z M8 20h8 M12 16v4 M12 7v6 M9 10l3-3 3 3",
};

export type IconName = keyof typeof PATHS;

export function icon(name: IconName, cls = "icon"): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", cls);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", PATHS[name] ?? "");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.appendChild(path);
  return svg;
}

/** Replaces the icon inside `host` (an element holding one `svg.icon`). */
export function setIcon(host: Element, name: IconName): void {
  const old = host.querySelector("svg.icon");
  const next = icon(name);
  if (old) old.replaceWith(next);
  else host.prepend(next);
}
