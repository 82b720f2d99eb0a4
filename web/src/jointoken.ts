/**
 * Join tokens (JWT) from an application that embeds Parley: `/r/{roomId}?jwt=…`. The page only
 * reads the token's claims to show the name it gives; it never verifies the signature (the
 * server does, at `joinRoom { roomId, jwt }`).
 */

export interface JoinClaims {
  name?: string;
  role?: string;
  /** Expiry, unix seconds. */
  exp?: number;
}

/** The claims of a compact JWT, unverified; null when it is not one. */
export function decodeClaims(jwt: string): JoinClaims | null {
  const part = jwt.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (typeof claims !== "object" || claims === null) return null;
    const c = claims as Record<string, unknown>;
    return {
      ...(typeof c.name === "string" ? { name: c.name } : {}),
      ...(typeof c.role === "string" ? { role: c.role } : {}),
      ...(typeof c.exp === "number" ? { exp: c.exp } : {}),
    };
  } catch {
    return null;
  }
}

/** Takes `jwt` out of the address (history.replaceState), so the token does not linger in the
 * address bar, the history or a copied link; returns it. Other parameters stay. */
export function takeTokenFromAddress(): string | null {
  const params = new URLSearchParams(location.search);
  const jwt = params.get("jwt");
  if (jwt === null) return null;
  params.delete("jwt");
  const query = params.toString();
  history.replaceState(history.state, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  return jwt.trim() || null;
}
