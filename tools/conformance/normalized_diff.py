import json,re,sys,difflib
a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
def norm(line):
    line=re.sub(r' \(reset\)','',line)
    line=re.sub(r' ~\d+s after our last frame','',line)
    line=re.sub(r'server_properties=\{.*\} mechanisms','server_properties={...} mechanisms',line)
    line=re.sub(r'amq\.gen-\S{22}','amq.gen-X',line)
    line=re.sub(r'amq\.ctag-\S{22}','amq.ctag-X',line)
    return line
A={r['id']:r for r in a['results']}; B={r['id']:r for r in b['results']}
n=0
for k,ra in A.items():
    rb=B.get(k)
    if not rb: print("MISSING",k); continue
    ta=[norm(x) for x in ra['transcript']]; tb=[norm(x) for x in rb['transcript']]
    if ta!=tb:
        n+=1
        print("===",k, "|", ra.get('doc',''))
        for l in difflib.unified_diff(ta,tb,lineterm='',n=0):
            if l.startswith('---') or l.startswith('+++') or l.startswith('@@'): continue
            print("   ",l[:400])
print(n,"differ")
