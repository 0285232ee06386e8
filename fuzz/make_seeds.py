# SPDX-License-Identifier: MIT
# one-off generator of the seed corpora in fuzz/corpus/ (python3 + numpy + Pillow; run from the repository root).
# Not used by the build or the tests: its outputs are committed.
# Arguments: only the named corpora are written (none: all).
import json, os, struct, io, sys, zlib, zipfile
import numpy as np
from PIL import Image
R='fuzz/corpus'
ONLY=set(sys.argv[1:])
def w(t,name,data):
    if ONLY and t not in ONLY: return
    os.makedirs(f'{R}/{t}',exist_ok=True)
    if isinstance(data,str): data=data.encode()
    open(f'{R}/{t}/{name}','wb').write(data)

# ---- safetensors
def st(tensors, meta=None):
    h={}; off=0; blob=b''
    if meta is not None: h['__metadata__']=meta
    for n,(dt,shape,raw) in tensors.items():
        h[n]={'dtype':dt,'shape':shape,'data_offsets':[off,off+len(raw)]}; off+=len(raw); blob+=raw
    hj=json.dumps(h,separators=(',',':')).encode()
    hj+=b' '*((8-(8+len(hj))%8)%8)
    return struct.pack('<Q',len(hj))+hj+blob
f32=lambda *v: struct.pack('<%df'%len(v),*v)
s1=st({'a':('F32',[2,2],f32(1,2,3,4)),'b.weight':('BF16',[3],b'\x80\x3f\x00\x40\x40\x40'),'ids':('I64',[2],struct.pack('<2q',5,-1)),
       'e':('F16',[0,4],b''),'s':('U8',[],b'\x07')},{'format':'pt'})
w('safetensors','small.safetensors',s1)
w('safetensors','empty.safetensors',st({}))
w('safetensors','dtypes.safetensors',st({'f64':('F64',[1],struct.pack('<d',1.5)),'i32':('I32',[1,1],b'\1\0\0\0'),'i16':('I16',[1],b'\1\0'),
       'i8':('I8',[2],b'\1\2'),'bool':('BOOL',[1],b'\1')}))
# a truncated slice of the real tiny checkpoint header (keeps the file small)
raw=open('weights/tiny-glm4v-moe/model.safetensors','rb').read()
hl=struct.unpack('<Q',raw[:8])[0]; hdr=json.loads(raw[8:8+hl])
sub={k:hdr[k] for k in list(hdr)[:6]}
data=b''; nh={}
for k,v in sub.items():
    if k=='__metadata__': nh[k]=v; continue
    b0,b1=v['data_offsets']; chunk=raw[8+hl+b0:8+hl+b1]
    nh[k]=dict(v,data_offsets=[len(data),len(data)+len(chunk)]); data+=chunk
small={k:v for k,v in nh.items() if k=='__metadata__' or v['data_offsets'][1]-v['data_offsets'][0]<=4096}
# rebuild with only small tensors
tens={}
for k,v in small.items():
    if k=='__metadata__': continue
    b0,b1=v['data_offsets']; tens[k]=(v['dtype'],v['shape'],data[b0:b1])
w('safetensors','tiny_slice.safetensors',st(tens,{'format':'pt'}))

# ---- configs
for m in ['moe','dense']:
    d=f'weights/tiny-glm4v-{m}'
    w('config',f'{m}.config.json',open(f'{d}/config.json').read())
w('config','processor_config.json',open('weights/tiny-glm4v-moe/processor_config.json').read())
w('config','generation_config.json',open('weights/tiny-glm4v-moe/generation_config.json').read())
w('config','preprocessor_config.json',json.dumps({"do_convert_rgb":True,"do_normalize":True,"do_rescale":True,"do_resize":True,
  "image_mean":[0.48145466,0.4578275,0.40821073],"image_processor_type":"Glm4vImageProcessor","image_std":[0.26862954,0.26130258,0.27577711],
  "merge_size":2,"patch_size":14,"resample":3,"rescale_factor":0.00392156862745098,"size":{"shortest_edge":12544,"longest_edge":9633792},"temporal_patch_size":2}))
w('config','video_preprocessor_config.json',json.dumps({"size":{"shortest_edge":12544,"longest_edge":47040000},"fps":2,"max_duration":300,
  "video_processor_type":"Glm46VVideoProcessor","patch_size":14,"temporal_patch_size":2,"merge_size":2}))
w('config','index.json',json.dumps({"metadata":{"total_size":123},"weight_map":{"lm_head.weight":"model-00001-of-00002.safetensors",
  "model.norm.weight":"model-00002-of-00002.safetensors","x":"model-00001-of-00002.safetensors"}}))
c=json.load(open('weights/tiny-glm4v-dense/config.json'))
tc=c['text_config']; rp=tc.pop('rope_parameters',{})
tc['rope_theta']=rp.get('rope_theta',10000.0); tc['rope_scaling']={'type':'default','mrope_section':rp.get('mrope_section',[8,12,12])}
w('config','dense_457.config.json',json.dumps(c))

# ---- tokenizer.json (small)
t=json.load(open('weights/tiny-glm4v-moe/tokenizer.json'))
m=t['model']
keep={k:v for k,v in m['vocab'].items() if v<300}
merges=[mg for mg in m['merges'] if (mg[0]+mg[1]) in keep and mg[0] in keep and mg[1] in keep][:40]
small=dict(t); small['model']=dict(m,vocab=keep,merges=merges)
small['added_tokens']=[dict(a,id=300+i) for i,a in enumerate(t['added_tokens'][:8])]+[{'id':308,'content':' lstrip','single_word':True,'lstrip':True,'rstrip':True,'normalized':True,'special':False}]
w('tokenizer','small.tokenizer.json',json.dumps(small,ensure_ascii=False))
nd=dict(small); nd['decoder']=None; nd['pre_tokenizer']={"type":"ByteLevel","add_prefix_space":True,"trim_offsets":True,"use_regex":True}
w('tokenizer','bytelevel_only.tokenizer.json',json.dumps(nd,ensure_ascii=False))
nd2=dict(small); nd2['model']=dict(small['model'],merges=[' '.join(x) for x in merges])
w('tokenizer','merges_strings.tokenizer.json',json.dumps(nd2,ensure_ascii=False))

# ---- tokenize (raw text)
for i,s in enumerate(["Hello, world! 123456 it's", "<|user|>\nDescribe <|begin_of_image|><|image|><|end_of_image|> this<|assistant|>",
    "你好，世界 🙂 \u00e9\u0301 \t\n\r\n  x", "<think>a</think>  <|endoftext|>[gMASK]<sop>"]):
    w('tokenize',f'text{i}.txt',s)
w('tokenize','invalid_utf8.bin',b'ok \xff\xfe \xc3( \xe2\x82 \xf0\x9f\x98 end\x00mid')

# ---- prompt: flags byte, grid bytes, text
w('prompt','chat_image.bin',bytes([0b00000110,3,4])+b'What is in this image?')
w('prompt','chat_video.bin',bytes([0b00010000,2,1,2])+b'What happens?')
w('prompt','raw_two_images.bin',bytes([0b00001001,1,2,3,0])+b'<|user|>\n<|begin_of_image|><|image|><|end_of_image|><|begin_of_image|><|image|><|end_of_image|>Compare.<|assistant|>')
w('prompt','multi.bin',bytes([0b00100100,5,5])+b'You are helpful.\x01Look at this\x01It is a cat.\x01tool says hi\x01And now?')
w('prompt','raw_video.bin',bytes([0b00010001,3,2,2])+b'<|user|>\n<|begin_of_video|><|video|><|end_of_video|>hi<|assistant|>')

# ---- images (byte 0 = selector: bit0 tga name, bits1-2 resize mode, bit3 video)
def img_bytes(im,fmt,**kw):
    b=io.BytesIO(); im.save(b,fmt,**kw); return b.getvalue()
rng=np.random.default_rng(0)
rgb=Image.fromarray(rng.integers(0,255,(15,20,3),dtype=np.uint8))
w('image','rgb.png',b'\x00'+img_bytes(rgb,'PNG'))
w('image','rgba.png',b'\x02'+img_bytes(rgb.convert('RGBA'),'PNG',optimize=False))
w('image','palette.png',b'\x04'+img_bytes(rgb.convert('P'),'PNG'))
w('image','gray16.png',b'\x08'+img_bytes(Image.fromarray((rng.integers(0,65535,(9,31))).astype(np.uint16)),'PNG'))
w('image','base.jpg',b'\x00'+img_bytes(rgb,'JPEG',quality=80))
w('image','prog_gray.jpg',b'\x0a'+img_bytes(rgb.convert('L'),'JPEG',progressive=True))
ex=Image.Exif(); ex[0x0112]=6
w('image','exif6.jpg',b'\x02'+img_bytes(rgb,'JPEG',exif=ex.tobytes()))
w('image','rgb.bmp',b'\x00'+img_bytes(rgb,'BMP'))
w('image','anim.gif',b'\x04'+img_bytes(rgb.convert('P'),'GIF'))
w('image','rgb.tga',b'\x01'+img_bytes(rgb,'TGA'))
w('image','rle.tga',b'\x03'+img_bytes(rgb,'TGA',compression='tga_rle'))
w('image','rgb.ppm',b'\x00'+img_bytes(rgb,'PPM'))
w('image','gray.pgm',b'\x00'+img_bytes(rgb.convert('L'),'PPM'))
# PSD: raw (compression 0), 3 channels, 8 bit
h,wd=6,7
psd=b'8BPS'+struct.pack('>H6xHIIHH',1,3,h,wd,8,3)+struct.pack('>I',0)*3+struct.pack('>H',0)+bytes(rng.integers(0,255,3*h*wd,dtype=np.uint8))
w('image','raw.psd',b'\x00'+psd)
# Radiance HDR, flat RGBE scanlines
hdr=b'#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 5\n'+bytes([128,64,32,129]*20)
w('image','flat.hdr',b'\x00'+hdr)
# the JPEG variants of tests/data/preprocess (libjpeg-turbo: 4:2:0/4:2:2/4:4:4/4:4:0/4:1:1, gray, progressive,
# arithmetic, restart markers, RGB, CMYK, YCCK, EXIF, corrupt scan data), selector bits 1-3 varied
for i,f in enumerate(sorted(x for x in os.listdir('tests/data/preprocess') if x.endswith('.jpg'))):
    w('image','pp_'+f,bytes([(2*i)&0x0e])+open('tests/data/preprocess/'+f,'rb').read())

# ---- compare: byte 0 = reader (0 npy, 1 npz, 2 safetensors)
def npy(a):
    b=io.BytesIO(); np.save(b,a); return b.getvalue()
w('compare','f32.npy',b'\x00'+npy(np.arange(6,dtype=np.float32).reshape(2,3)))
w('compare','i64_0d.npy',b'\x00'+npy(np.array(7,dtype=np.int64)))
w('compare','bool.npy',b'\x00'+npy(np.array([True,False])))
for comp,name in [(False,'stored.npz'),(True,'deflated.npz')]:
    b=io.BytesIO()
    (np.savez_compressed if comp else np.savez)(b,**{'model.language_model.layers.1.mlp.gate.out2':np.array([[3,1],[0,2]],dtype=np.int64),
        'model.language_model.layers.1.mlp.gate.out1':np.array([[0.25,0.75],[0.5,0.5]],dtype=np.float32),'hidden_states.2':np.ones((2,4),np.float16)})
    w('compare',name,b'\x01'+b.getvalue())
w('compare','small.safetensors',b'\x02'+s1)

# ---- quant: [u16 LE n][n bytes of config.json][safetensors], the tensors as compressed-tensors 0.12 / transformers
# FineGrainedFP8 save them (pack_to_int32: fields little end first along the last dim; zero points packed along the
# output dim); values random, scales positive
rng=np.random.default_rng(20)
def qcfg(groups,fmt,ignore=(),nested=False):
    qc={'quant_method':'compressed-tensors','format':fmt,'quantization_status':'compressed','kv_cache_scheme':None,
        'ignore':list(ignore),'config_groups':groups,'version':'0.12.2'}
    return {'text_config':{'quantization_config':qc}} if nested else {'architectures':['Glm4vForConditionalGeneration'],'quantization_config':qc}
def wargs(bits,typ,strat,group=None,sym=True,block=None):
    return {'num_bits':bits,'type':typ,'strategy':strat,'group_size':group,'symmetric':sym,'dynamic':False,'block_structure':block,'observer':'minmax'}
def aargs(typ): return {'num_bits':8,'type':typ,'strategy':'token','symmetric':True,'dynamic':True,'group_size':None}
def scale(dt,shape):
    v=rng.uniform(1e-3,0.1,size=shape).astype(np.float32)
    if dt=='F32': return ('F32',list(shape),v.tobytes())
    if dt=='F16': return ('F16',list(shape),v.astype(np.float16).tobytes())
    return ('BF16',list(shape),(v.view(np.uint32)>>16).astype(np.uint16).tobytes())
def fp8(O,K,nan=False):
    b=rng.integers(0,256,size=(O,K),dtype=np.uint8)
    if not nan: b[(b&0x7f)==0x7f]^=1
    return ('F8_E4M3',[O,K],b.tobytes())
def pack(q,bits):  # q: [R, C] unsigned fields -> int32 [R, ceil(C*bits/32)]
    R_,C=q.shape; per=32//bits; W=(C+per-1)//per
    out=np.zeros((R_,W),np.uint32)
    for c in range(C): out[:,c//per]|=(q[:,c].astype(np.uint32)&((1<<bits)-1))<<np.uint32(bits*(c%per))
    return out.view(np.int32)
def packed(O,K,bits):
    p=pack(rng.integers(0,1<<bits,size=(O,K)),bits)
    return ('I32',list(p.shape),p.tobytes())
def quant_seed(name,cfg,tensors):
    c=json.dumps(cfg).encode()
    w('quant',name,struct.pack('<H',len(c))+c+st(tensors))
L='model.language_model.layers.0.'
G=lambda targets,wa,aa=None,fmt=None: {k:v for k,v in {'targets':targets,'weights':wa,'input_activations':aa,'format':fmt}.items() if k!='format' or v}
quant_seed('fp8_channel_w8a8.bin',qcfg({'group_0':G(['Linear'],wargs(8,'float','channel'),aargs('float'))},'float-quantized',['lm_head']),
    {L+'self_attn.q_proj.weight':fp8(7,40),L+'self_attn.q_proj.weight_scale':scale('BF16',(7,1)),
     'lm_head.weight':('BF16',[2,40],bytes(160))})
quant_seed('fp8_tensor_nan.bin',qcfg({'group_0':G(['Linear'],wargs(8,'float','tensor'))},'float-quantized'),
    {L+'self_attn.o_proj.weight':fp8(4,32,nan=True),L+'self_attn.o_proj.weight_scale':scale('F32',(1,))})
z=('I32',[5,1],bytes(20))
quant_seed('int8_channel_w8a8.bin',qcfg({'group_0':G(['Linear'],wargs(8,'int','channel'),aargs('int'))},'int-quantized'),
    {L+'mlp.gate_up_proj.weight':('I8',[5,48],rng.integers(-128,128,size=(5,48),dtype=np.int8).tobytes()),
     L+'mlp.gate_up_proj.weight_scale':scale('F16',(5,1)),L+'mlp.gate_up_proj.weight_zero_point':z})
for O,K,g,nm in [(6,64,16,'w4a16_group16.bin'),(3,40,8,'w4a16_group8_odd.bin')]:
    quant_seed(nm,qcfg({'group_0':G(['Linear'],wargs(4,'int','group',g))},'pack-quantized'),
        {L+'mlp.down_proj.weight_packed':packed(O,K,4),L+'mlp.down_proj.weight_scale':scale('BF16',(O,K//g)),
         L+'mlp.down_proj.weight_shape':('I64',[2],struct.pack('<2q',O,K))})
O,K,g=9,64,32
zp=pack(rng.integers(0,16,size=(K//g,O)),4).T.copy()  # [ceil(O*4/32), K/g]: packed along the output dim
quant_seed('w4_asym_group32.bin',qcfg({'group_0':G(['Linear'],wargs(4,'int','group',g,sym=False))},'pack-quantized'),
    {L+'self_attn.v_proj.weight_packed':packed(O,K,4),L+'self_attn.v_proj.weight_scale':scale('BF16',(O,K//g)),
     L+'self_attn.v_proj.weight_shape':('I64',[2],struct.pack('<2q',O,K)),
     L+'self_attn.v_proj.weight_zero_point':('I32',list(zp.shape),zp.tobytes())})
quant_seed('w8_pack_channel.bin',qcfg({'group_0':G(['Linear'],wargs(8,'int','channel'))},'pack-quantized'),
    {L+'self_attn.k_proj.weight_packed':packed(3,20,8),L+'self_attn.k_proj.weight_scale':scale('F32',(3,1)),
     L+'self_attn.k_proj.weight_shape':('I32',[2],struct.pack('<2i',3,20))})
quant_seed('w4_g_idx.bin',qcfg({'group_0':G(['Linear'],wargs(4,'int','group',8))},'pack-quantized',nested=True),
    {L+'mlp.up_proj.weight_packed':packed(2,24,4),L+'mlp.up_proj.weight_scale':scale('F16',(2,3)),
     L+'mlp.up_proj.weight_shape':('I64',[2],struct.pack('<2q',2,24)),
     L+'mlp.up_proj.weight_g_idx':('I32',[24],(np.arange(24,dtype=np.int32)//8).tobytes())})
quant_seed('fp8_block_ct.bin',qcfg({'group_0':G(['Linear'],wargs(8,'float','block',block=[2,8]))},'float-quantized'),
    {'model.visual.blocks.0.mlp.gate_proj.weight':fp8(5,24),'model.visual.blocks.0.mlp.gate_proj.weight_scale':scale('BF16',(3,3))})
quant_seed('multi_group_re.bin',qcfg({'group_0':G(['re:.*mlp\\.experts\\..*'],wargs(4,'int','group',16),fmt='pack-quantized'),
                                      'group_1':G(['Linear'],wargs(8,'float','channel'),aargs('float'),fmt='float-quantized')},
                                     'float-quantized',['re:.*visual.*','lm_head']),
    {'model.language_model.layers.1.mlp.experts.3.down_proj.weight_packed':packed(4,32,4),
     'model.language_model.layers.1.mlp.experts.3.down_proj.weight_scale':scale('BF16',(4,2)),
     'model.language_model.layers.1.mlp.experts.3.down_proj.weight_shape':('I64',[2],struct.pack('<2q',4,32)),
     'model.language_model.layers.1.mlp.shared_experts.up_proj.weight':fp8(3,17),
     'model.language_model.layers.1.mlp.shared_experts.up_proj.weight_scale':scale('BF16',(3,1)),
     'model.language_model.layers.1.mlp.gate.weight':('BF16',[2,32],bytes(128)),
     'model.visual.blocks.0.attn.qkv.weight':('BF16',[3,8],bytes(48))})
fp8cfg={'quantization_config':{'quant_method':'fp8','activation_scheme':'dynamic','fmt':'e4m3','weight_block_size':[4,16],
        'modules_to_not_convert':['model.visual.blocks.0.attn.qkv_proj','lm_head']}}
c=json.dumps(fp8cfg).encode()
w('quant','fp8_block.bin',struct.pack('<H',len(c))+c+st({L+'self_attn.q_proj.weight':fp8(10,40),L+'self_attn.q_proj.weight_scale_inv':scale('F32',(3,3)),
    'model.visual.blocks.0.attn.qkv.weight':('BF16',[3,8],bytes(48)),'lm_head.weight':('BF16',[2,40],bytes(160))}))
print('ok')
