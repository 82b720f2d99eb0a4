/**
 * Which simulcast layer each remote camera should arrive in: the one that fits its tile as
 * drawn now, so a small tile does not pull the full picture. Follows resizes and layout changes
 * (a screen share moves the cameras into a narrow strip), and asks the server only when the
 * choice changes. Video the page does not show (a tile scrolled out of view, in a hidden panel,
 * or the whole page hidden or minimised) is stopped with `showVideo` and asked for again when
 * it is shown.
 */
import type { SimulcastLayer, Subscription } from "./protocol";

/** Tile widths (CSS pixels) below which a lower layer is enough. */
const LOW_BELOW = 320;
const MEDIUM_BELOW = 800;
const SETTLE_MS = 300;

export function layerForWidth(width: number): SimulcastLayer {
  if (width < LOW_BELOW) return 0;
  if (width < MEDIUM_BELOW) return 1;
  return 2;
}

interface Binding {
  el: HTMLElement;
  sub: Subscription;
}

export class LayerChooser {
  /** By tile element: the subscription whose video that tile shows. */
  private readonly bound = new Map<HTMLElement, Binding>();
  private readonly observer: ResizeObserver | null;
  private readonly seen: IntersectionObserver | null;
  /** Tiles whose box is (false: is not) within the viewport, as last observed. */
  private readonly inView = new Map<Element, boolean>();
  private timer = 0;
  private stopped = false;
  /** How many times the tiles have been looked at (for the browser tests). */
  private looks = 0;

  /** `simulcast`: the engine sends layers to choose from (else only showing is followed). */
  constructor(private readonly simulcast = true) {
    this.observer =
      typeof ResizeObserver !== "undefined" ? new ResizeObserver(() => this.schedule()) : null;
    this.seen =
      typeof IntersectionObserver !== "undefined"
        ? new IntersectionObserver((entries) => {
            for (const e of entries) this.inView.set(e.target, e.isIntersecting);
            this.schedule();
          })
        : null;
    window.addEventListener("resize", this.onResize);
    document.addEventListener("visibilitychange", this.onResize);
  }

  private readonly onResize = (): void => this.schedule();

  /** Whether the page shows `el`: the page is visible, and the tile is laid out in view. */
  private shows(el: HTMLElement): boolean {
    if (document.hidden || this.inView.get(el) === false) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  }

  /** `el` (a tile) shows `sub`'s camera, or nothing (`null`). */
  bind(el: HTMLElement, sub: Subscription | null): void {
    if (this.stopped) return;
    const current = this.bound.get(el);
    if (current?.sub === sub) return;
    if (!sub) {
      this.forget(el);
      return;
    }
    if (!current) {
      this.observer?.observe(el);
      this.seen?.observe(el);
    }
    this.bound.set(el, { el, sub });
    this.schedule();
  }

  /** Forgets tiles that are no longer on the page. */
  prune(): void {
    for (const el of [...this.bound.keys()]) {
      if (!el.isConnected) this.forget(el);
    }
  }

  private forget(el: HTMLElement): void {
    this.bound.delete(el);
    this.inView.delete(el);
    this.observer?.unobserve(el);
    this.seen?.unobserve(el);
  }

  private schedule(): void {
    if (this.stopped) return;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      this.timer = 0;
      this.apply();
    }, SETTLE_MS);
  }

  /** How many times the tiles have been looked at, and whether a look is due. */
  checks(): { checks: number; pending: boolean } {
    return { checks: this.looks, pending: this.timer !== 0 };
  }

  /** Sends the layer each bound subscription should have, where it differs from the last. */
  private apply(): void {
    this.looks += 1;
    this.prune();
    for (const { el, sub } of this.bound.values()) {
      if (sub.isClosed) continue;
      const shown = this.shows(el);
      // On failure the subscription keeps its previous choice; the next change tries again.
      if (shown !== sub.shown) sub.showVideo(shown).catch(() => undefined);
      if (!shown || !this.simulcast) continue;
      const layer = layerForWidth(el.getBoundingClientRect().width);
      if (layer === sub.layer) continue;
      sub.selectLayer(layer).catch(() => undefined);
    }
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    window.removeEventListener("resize", this.onResize);
    document.removeEventListener("visibilitychange", this.onResize);
    this.observer?.disconnect();
    this.seen?.disconnect();
    this.bound.clear();
  }
}
