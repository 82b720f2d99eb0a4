/**
 * Which simulcast layer each remote camera should arrive in: the one that fits its tile as
 * drawn now, so a small tile does not pull the full picture. Follows resizes and layout changes
 * (a screen share moves the cameras into a narrow strip), and asks the server only when the
 * choice changes.
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
  private timer = 0;
  private stopped = false;
  /** How many times the tiles have been looked at (for the browser tests). */
  private looks = 0;

  constructor() {
    this.observer =
      typeof ResizeObserver !== "undefined" ? new ResizeObserver(() => this.schedule()) : null;
    window.addEventListener("resize", this.onResize);
  }

  private readonly onResize = (): void => this.schedule();

  /** `el` (a tile) shows `sub`'s camera, or nothing (`null`). */
  bind(el: HTMLElement, sub: Subscription | null): void {
    if (this.stopped) return;
    const current = this.bound.get(el);
    if (current?.sub === sub) return;
    if (!sub) {
      this.bound.delete(el);
      this.observer?.unobserve(el);
      return;
    }
    if (!current) this.observer?.observe(el);
    this.bound.set(el, { el, sub });
    this.schedule();
  }

  /** Forgets tiles that are no longer on the page. */
  prune(): void {
    for (const el of [...this.bound.keys()]) {
      if (!el.isConnected) {
        this.bound.delete(el);
        this.observer?.unobserve(el);
      }
    }
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
      const layer = layerForWidth(el.getBoundingClientRect().width);
      if (layer === sub.layer) continue;
      // On failure the subscription keeps its previous choice; the next change tries again.
      sub.selectLayer(layer).catch(() => undefined);
    }
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    window.removeEventListener("resize", this.onResize);
    this.observer?.disconnect();
    this.bound.clear();
  }
}
