#!/bin/sh
# Regenerates the MP3 fixtures of the media package tests from synthetic WAVs
# of an exactly known sample count. Needs Debian's sox and lame (3.100) and
# python3. Run from anywhere:  sh media/testdata/make-fixtures.sh
# fixtures.txt records, per fixture: file, WAV sample count (per channel),
# sample rate, channels, whether lame wrote a LAME tag, whether the file was
# encoded with --nores.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > fixtures.txt

# gen NAME RATE CHANNELS SAMPLES LAMETAG NORES LAME-OPTIONS...
gen() {
	name=$1 rate=$2 ch=$3 samples=$4 lametag=$5 nores=$6
	shift 6
	wav="$tmp/$name.wav"
	sox -R -D -r "$rate" -n -r "$rate" -c "$ch" -b 16 "$wav" synth "${samples}s" sine 440 sine 660 vol 0.5
	got=$(soxi -s "$wav")
	[ "$got" = "$samples" ] || { echo "sox made $got samples, want $samples" >&2; exit 1; }
	lame --quiet --resample "$rate" "$@" "$wav" "$name.mp3"
	echo "$name.mp3 $samples $rate $ch $lametag $nores" >> fixtures.txt
}

gen cbr128_44k_stereo 44100 2 132301 1 0 -b 128 -m s
gen cbr320_44k_joint 44100 2 88201 1 0 -b 320 -m j
gen vbr_v2_44k 44100 2 132303 1 0 -V 2
gen mono_44k 44100 1 110251 1 0 -b 64 -m m
gen cbr128_48k 48000 2 96007 1 0 -b 128
gen cbr96_32k 32000 2 64011 1 0 -b 96
gen mpeg2_22k 22050 2 66151 1 0 -b 64
gen mpeg2_24k 24000 1 72013 1 0 -b 64 -m m
gen mpeg2_16k 16000 2 48017 1 0 -b 48
gen mpeg25_8k 8000 1 24019 1 0 -b 32 -m m
gen mpeg25_8k_notag 8000 1 16001 0 0 -b 16 -m m
gen mpeg25_11k 11025 2 33077 1 0 -b 32
gen nores_44k 44100 2 132305 1 1 -b 128 --nores
gen crc_44k 44100 2 88207 1 0 -b 128 -p
gen id3v23_44k 44100 2 88209 1 0 -b 96 --id3v2-only --tt "Sine Title" --ta "Sine Artist" --tl "Sine Album"
gen id3v1_44k 44100 2 88211 1 0 -b 96 --id3v1-only --tt "V1 Title" --ta "V1 Artist" --tl "V1 Album"
gen notag_44k 44100 2 88213 0 0 -b 128 -t

# id3v24_44k.mp3: a hand-made ID3v2.4 tag in front of a LAME file.
python3 - "$tmp" <<'PY'
import sys
def ss(n):
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
def frame(fid, text):
    body = b"\x03" + text.encode("utf-8")
    return fid.encode() + ss(len(body)) + b"\x00\x00" + body
frames = frame("TIT2", "V24 Title") + frame("TPE1", "V24 Artist") + frame("TALB", "V24 Album")
body = frames + b"\x00" * 64  # padding
tag = b"ID3\x04\x00\x00" + ss(len(body)) + body
audio = open("cbr128_44k_stereo.mp3", "rb").read()
open("id3v24_44k.mp3", "wb").write(tag + audio)
PY
grep "^cbr128_44k_stereo.mp3" fixtures.txt | sed "s/^cbr128_44k_stereo/id3v24_44k/" >> fixtures.txt
ls -l *.mp3
