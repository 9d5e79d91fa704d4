//! A bounds-checked LZO1X decompressor (the format makedumpfile uses for `-l` dumps).
//!
//! Written from the format description because dump pages are untrusted: every length and
//! distance is checked, and malformed input is an error, never a panic or an out-of-bounds
//! access. Instruction kinds (first byte `t` of each instruction):
//! - `t < 16` after a match-free position: literal run of `t + 3` bytes (`t == 0`: extended);
//! - `16..32` (M4): long distance (16 KiB..48 KiB), also the end marker when the distance is 0;
//! - `32..64` (M3): distance up to 16 KiB; `64..` (M2): short match of 3..8 bytes;
//! - `t < 16` right after a match or a short literal run (M1): a 2- or 3-byte match.
//!
//! The low two bits of a match's distance field give the number of literals (0-3) that follow.

struct Input<'a> {
    b: &'a [u8],
    p: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Result<usize, String> {
        let v = *self.b.get(self.p).ok_or("input ends early")?;
        self.p += 1;
        Ok(v as usize)
    }
    fn le16(&mut self) -> Result<usize, String> {
        Ok(self.byte()? | (self.byte()? << 8))
    }
    /// Extended length: `base` plus 255 per zero byte plus the first non-zero byte.
    fn ext_len(&mut self, base: usize) -> Result<usize, String> {
        let mut t = base;
        loop {
            let v = self.byte()?;
            if v != 0 {
                return Ok(t + v);
            }
            t += 255;
            if t > 1 << 24 {
                return Err("length run too long".into());
            }
        }
    }
}

struct Output<'a> {
    b: &'a mut [u8],
    p: usize,
}

impl Output<'_> {
    fn literals(&mut self, inp: &mut Input<'_>, n: usize) -> Result<(), String> {
        let src = inp
            .b
            .get(inp.p..inp.p.checked_add(n).ok_or("overflow")?)
            .ok_or("literal run beyond the input")?;
        let dst = self
            .b
            .get_mut(self.p..self.p + n)
            .ok_or("output larger than the page")?;
        dst.copy_from_slice(src);
        inp.p += n;
        self.p += n;
        Ok(())
    }
    fn copy_match(&mut self, dist: usize, n: usize) -> Result<(), String> {
        if dist == 0 || dist > self.p {
            return Err(format!(
                "match distance {} before the start of the output",
                dist
            ));
        }
        if self.p + n > self.b.len() {
            return Err("output larger than the page".into());
        }
        // Byte by byte: matches may overlap their own output.
        for _ in 0..n {
            self.b[self.p] = self.b[self.p - dist];
            self.p += 1;
        }
        Ok(())
    }
}

/// Decompresses `input` into `out`; returns the number of bytes produced.
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut i = Input { b: input, p: 0 };
    let mut o = Output { b: out, p: 0 };
    // State: number of literals that followed the previous instruction (0..3), or 4 after a
    // literal run of at least 4 bytes (which changes the meaning of a following t < 16).
    let mut state: usize;
    let first = *input.first().ok_or("empty input")? as usize;
    if first > 17 {
        i.p = 1;
        let n = first - 17;
        o.literals(&mut i, n)?;
        state = if n < 4 { n } else { 4 };
    } else {
        state = 0;
    }
    loop {
        let t = i.byte()?;
        if t < 16 {
            match state {
                0 => {
                    // Literal run.
                    let n = if t == 0 { i.ext_len(15)? } else { t } + 3;
                    o.literals(&mut i, n)?;
                    state = 4;
                    continue;
                }
                4 => {
                    // 3-byte match just after a long literal run.
                    let dist = 1 + 0x800 + (t >> 2) + (i.byte()? << 2);
                    o.copy_match(dist, 3)?;
                }
                _ => {
                    // 2-byte match after a match's trailing literals.
                    let dist = 1 + (t >> 2) + (i.byte()? << 2);
                    o.copy_match(dist, 2)?;
                }
            }
            state = t & 3;
        } else if t >= 64 {
            let dist = 1 + ((t >> 2) & 7) + (i.byte()? << 3);
            o.copy_match(dist, (t >> 5) + 1)?;
            state = t & 3;
        } else if t >= 32 {
            let len = if t & 31 == 0 { i.ext_len(31)? } else { t & 31 } + 2;
            let d = i.le16()?;
            o.copy_match(1 + (d >> 2), len)?;
            state = d & 3;
        } else {
            let len = if t & 7 == 0 { i.ext_len(7)? } else { t & 7 } + 2;
            let d = i.le16()?;
            let dist = ((t & 8) << 11) + (d >> 2);
            if dist == 0 {
                return if i.p == input.len() {
                    Ok(o.p)
                } else {
                    Err("data after the end marker".into())
                };
            }
            o.copy_match(dist + 0x4000, len)?;
            state = d & 3;
        }
        if state > 0 {
            o.literals(&mut i, state)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut page = vec![0u8; 4096];
        for (i, b) in page.iter_mut().enumerate() {
            *b = ((i * 7) ^ (i >> 5)) as u8;
        }
        page[100..900].fill(0);
        for data in [
            page.clone(),
            vec![0u8; 4096],
            (0..4096).map(|i| i as u8).collect(),
        ] {
            let c = lzokay_native::compress(&data).unwrap();
            let mut out = vec![0u8; 4096];
            assert_eq!(decompress(&c, &mut out), Ok(4096));
            assert_eq!(out, data);
            // Every truncation and single-byte corruption fails cleanly or decodes something.
            for cut in 0..c.len() {
                let _ = decompress(&c[..cut], &mut out);
            }
            for k in 0..c.len() {
                let mut bad = c.clone();
                bad[k] ^= 0x5a;
                let _ = decompress(&bad, &mut out);
            }
        }
        assert!(decompress(&[], &mut [0u8; 16]).is_err());
        assert!(decompress(&[0x11, 0, 0], &mut [0u8; 16]) == Ok(0));
    }
}
