// Serves the page that playwright-record.js records (node playwright-server.js PORT LOGFILE);
// it logs every request it answers, as nginx would, for TestPlaywrightHAR.
const http = require('http'); const zlib = require('zlib'); const fs = require('fs');
const log = fs.createWriteStream(process.argv[3] || 'access.log');
const page = `<!doctype html><html><head><script src="/app.js"></script><link rel="stylesheet" href="/s.css"></head>
<body><img src="/img.png"><script>fetch('/api/items?page=2').then(r=>r.json()).then(j=>{document.body.dataset.items=j.length;
fetch('/api/cart',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify({id:1})}).then(r=>r.text()).then(t=>document.title=t)})</script></body></html>`;
const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
http.createServer((req, res) => {
  let body = []; req.on('data', c => body.push(c)); req.on('end', () => {
    log.write(`${req.method} ${req.url}\n`);
    const u = req.url;
    if (u === '/') { res.writeHead(200, {'Content-Type': 'text/html'}); res.end(page); }
    else if (u === '/app.js') { const z = zlib.gzipSync('window.app=1;'.repeat(50)); res.writeHead(200, {'Content-Type': 'text/javascript', 'Content-Encoding': 'gzip', 'Content-Length': z.length}); res.end(z); }
    else if (u === '/s.css') { res.writeHead(200, {'Content-Type': 'text/css', 'Set-Cookie': 'sid=abc; Path=/; HttpOnly'}); res.end('body{color:red}'); }
    else if (u === '/img.png') { res.writeHead(200, {'Content-Type': 'image/png'}); res.end(png); }
    else if (u.startsWith('/api/items')) { res.writeHead(200, {'Content-Type': 'application/json'}); res.end('[1,2,3]'); }
    else if (u === '/api/cart') { res.writeHead(201, {'Content-Type': 'text/plain'}); res.end('added ' + Buffer.concat(body).toString()); }
    else { res.writeHead(404); res.end(); }
  });
}).listen(+process.argv[2], '127.0.0.1');
