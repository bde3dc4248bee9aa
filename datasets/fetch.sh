#!/bin/sh
# Downloads one DropNAS data set, checks its MD5 and unpacks it into the layout the readers expect
# (see datasets/README.md).
#
#   sh datasets/fetch.sh <cifar10|cifar100|mnist|fashion-mnist> [dest-dir]
#
# dest-dir defaults to datasets/<name>. Needs curl or wget, and md5sum (or macOS md5), tar, gzip.
# FETCH_MIRROR=<url-prefix> replaces the folder part of every URL (a local or private mirror).
set -eu

usage() {
    echo "usage: sh $0 <cifar10|cifar100|mnist|fashion-mnist> [dest-dir]" >&2
    exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
name=$1
dest=${2:-datasets/$name}

mnist=https://ossci-datasets.s3.amazonaws.com/mnist
fashion=http://fashion-mnist.s3-website.eu-central-1.amazonaws.com

# One "url md5" line per file to fetch.
case $name in
cifar10)
    files="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz c32a1d4ab5d03f1284b67883e8d87530"
    ;;
cifar100)
    files="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz 03b5dce01913d631647c71ecec9e9cb8"
    ;;
mnist)
    files="$mnist/train-images-idx3-ubyte.gz f68b3c2dcbeaaa9fbdd348bbdeb94873
$mnist/train-labels-idx1-ubyte.gz d53e105ee54ea40749a09fcbcd1e9432
$mnist/t10k-images-idx3-ubyte.gz 9fb629c4189551a2d022fa330f9573f3
$mnist/t10k-labels-idx1-ubyte.gz ec29112dd5afa0611ce80d1b7f02629c"
    ;;
fashion-mnist)
    files="$fashion/train-images-idx3-ubyte.gz 8d4fb7e6c68d591d4c3dfef9ec88bf0d
$fashion/train-labels-idx1-ubyte.gz 25c81989df183df01b3e8a0aad5dffbe
$fashion/t10k-images-idx3-ubyte.gz bef4ecab320f06d8554ea6380940ec79
$fashion/t10k-labels-idx1-ubyte.gz bb300cfdad3c16e7a12a480ee83cd310"
    ;;
*)
    echo "unknown data set '$name'" >&2
    usage
    ;;
esac

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"
    else
        echo "neither md5sum nor md5 found: cannot verify $1" >&2
        exit 1
    fi
}

fetch() { # url output
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 3 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -O "$2" "$1"
    else
        echo "neither curl nor wget found: download $1 by hand (see datasets/README.md)" >&2
        exit 1
    fi
}

mkdir -p "$dest"
echo "$files" | while read -r url md5; do
    file=${url##*/}
    if [ -n "${FETCH_MIRROR:-}" ]; then
        url=${FETCH_MIRROR%/}/$file
    fi
    target=$dest/$file
    case $file in
    cifar-10-binary.tar.gz) unpacked=$dest/cifar-10-batches-bin/test_batch.bin ;;
    cifar-100-binary.tar.gz) unpacked=$dest/cifar-100-binary/test.bin ;;
    *) unpacked= ;;
    esac
    if [ -n "$unpacked" ] && [ -f "$unpacked" ]; then
        echo "$unpacked: already unpacked (delete it to fetch again)"
        continue
    fi
    if [ -f "$target" ] && [ "$(md5_of "$target")" = "$md5" ]; then
        echo "$target: already there, MD5 ok"
        continue
    fi
    echo "downloading $url"
    fetch "$url" "$target.part"
    found=$(md5_of "$target.part")
    if [ "$found" != "$md5" ]; then
        rm -f "$target.part"
        echo "$file: MD5 mismatch: expected $md5, found $found (corrupt or incomplete download; try again)" >&2
        exit 1
    fi
    case $file in
    *.tar.gz)
        tar -xzf "$target.part" -C "$dest"
        rm -f "$target.part"
        echo "$file: MD5 ok, unpacked into $dest"
        ;;
    *)
        # Gzipped IDX files are read as they are.
        mv "$target.part" "$target"
        echo "$file: MD5 ok, saved as $target"
        ;;
    esac
done
