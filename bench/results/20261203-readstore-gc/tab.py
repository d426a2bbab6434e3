import gzip,json,os,re,sys
def rd(p):
    l=open(p).read().split('\n'); h=l[0].split(); v=l[1].split(); return dict(zip(h,map(float,v)))
print("| variant | place p99 | fresh p50/p99 | worst s | lag max | pauses (young/mixed) | young max | mixed max / total | store CPU | CPU/order | raw |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for n in sys.argv[1:]:
    d=json.load(open(f'{n}/dayrun.json'))
    b,a=rd(f'{n}/jstat.before'),rd(f'{n}/jstat.after')
    t0,t1=b['Timestamp'],a['Timestamp']
    young=[];mixed=[];other=[]
    log=f'{n}/gc.log'
    lines=open(log) if os.path.exists(log) else gzip.open(log+'.gz','rt')
    for line in lines:
        m=re.match(r'\[(\d+\.\d+)s\]\[info\s*\]\[gc\s*\] GC\(\d+\) Pause (.*?) (\d+)M->(\d+)M\((\d+)M\) (\d+\.\d+)ms',line)
        if not m: continue
        up=float(m.group(1))
        if up<t0 or up>t1: continue
        kind,ms=m.group(2),float(m.group(6))
        (mixed if 'Mixed' in kind else young if 'Normal' in kind or 'Concurrent Start' in kind or 'Prepare' in kind else other).append(ms)
    worst=max(s['freshP99Ms'] for s in d['timeline'])
    cpu=d['cpu']; 
    tot=cpu['totalSeconds']; store=cpu['seconds'].get('mongo-stand-in',0); po=cpu['orders']
    print(f"| {n} | {d['place']['p99Ms']:.0f} | {d['freshness']['p50Ms']:.0f}/{d['freshness']['p99Ms']:.0f} | {worst:.0f} | {d['maxConsumerLag']:.0f} | {len(young)}/{len(mixed)} | {max(young,default=0):.0f} | {max(mixed,default=0):.0f} / {sum(mixed):.0f} | {1000*store/po:.3f} | {1000*tot/po:.3f} | {d['raw']['perSecond']:.0f} |"+ (f" other {other}" if other else ""))
