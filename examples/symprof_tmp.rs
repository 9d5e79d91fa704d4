fn main() {
    let p = std::env::args().nth(1).unwrap();
    let data = std::fs::read(&p).unwrap();
    let mut best = f64::MAX;
    for _ in 0..30 {
        let t = std::time::Instant::now();
        let idx = kvm::symbols::elf::parse_bytes(&data, "x").unwrap();
        std::hint::black_box(&idx);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("parse_bytes best {:.3} ms", best * 1e3);
}
