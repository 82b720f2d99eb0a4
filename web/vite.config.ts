import { defineConfig } from "vite";

// The server serves index.html for "/" and "/r/{roomId}" and the bundle under /assets/.
// For development, `PARLEY_DEV_SERVER=http://127.0.0.1:8080 npm run dev` proxies the API.
const apiTarget = process.env.PARLEY_DEV_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/",
  build: {
    outDir: "../src/parley/static",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
  },
  server: {
    proxy: {
      "/socket.io": { target: apiTarget, ws: true },
      "/get-connection-info": apiTarget,
      "/upload-file": apiTarget,
      "/download-file": apiTarget,
      "/health": apiTarget,
    },
  },
});
