import { defineConfig } from 'vite';

// Preact's automatic JSX runtime. Vite 8 transforms with Oxc (its `esbuild`
// option is deprecated), so the JSX settings live under `oxc`.
export default defineConfig({
  base: '/',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
  },
  // The dev server's dependency scan does not apply the JSX settings above, so the
  // few dependencies are listed instead of discovered.
  optimizeDeps: {
    noDiscovery: true,
    include: ['preact', 'preact/hooks', 'preact/jsx-runtime', 'preact/jsx-dev-runtime'],
  },
  // Only for `npx vite` while developing: the store's API runs elsewhere.
  server: {
    proxy: {
      '/api': {
        target: process.env.STORE_API || 'http://127.0.0.1:3999',
        changeOrigin: false,
        // Server-sent events: no buffering, no timeout on the stream.
        timeout: 0,
        proxyTimeout: 0,
      },
    },
  },
});
