"""Opens PAGE in headless Chromium (through chromedriver, a fresh profile)
and calls window.FN(...ARGS) for each JSON list of ARGS, printing each result
as a JSON line. Usage: drive.py PAGE FN ARGS...  e.g. drive.py idb.html
shoal_like '["strict",1000]'"""
import json, subprocess, sys, time, urllib.request, os, shutil
page, fn = sys.argv[1], sys.argv[2]
cd = subprocess.Popen(['chromedriver', '--port=9515'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
hs = subprocess.Popen(['python3', '-m', 'http.server', '8123', '--bind', '127.0.0.1'], cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'www'), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
def req(method, path, body=None):
    r = urllib.request.Request('http://localhost:9515' + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    return json.load(urllib.request.urlopen(r))['value']
prof = f'/tmp/spikeprof{os.getpid()}'
try:
    sid = req('POST', '/session', {'capabilities': {'alwaysMatch': {'goog:chromeOptions': {'args': ['--headless=new', '--no-sandbox', '--user-data-dir=' + prof]}}}})['sessionId']
    req('POST', f'/session/{sid}/timeouts', {'script': 300000})
    req('POST', f'/session/{sid}/url', {'url': f'http://localhost:8123/{page}'})
    time.sleep(0.5)
    for a in sys.argv[3:]:
        args = json.loads(a)
        print(json.dumps(req('POST', f'/session/{sid}/execute/async', {'script': f'const done=arguments[arguments.length-1]; {fn}(...arguments[0]).then(done, e=>done("ERR "+String(e)))', 'args': [args]})))
    req('DELETE', f'/session/{sid}')
finally:
    cd.kill(); hs.kill(); shutil.rmtree(prof, ignore_errors=True)
