//! The one bounds-checked accessor into packet memory.

use core::{arch::asm, mem::size_of};

/// A pointer to a `T` at `offset` bytes into the packet `[data, data_end)`, or `Err` when the
/// packet is too short. Every packet read goes through here so the verifier sees one check.
#[inline(always)]
pub fn ptr_at<T>(data: usize, data_end: usize, offset: usize) -> Result<*const T, ()> {
    let start = data + offset;
    if start + size_of::<T>() > data_end {
        return Err(());
    }
    Ok(start as *const T)
}

/// Reads a `T` (unaligned) at `offset`. Values of 2, 4, 8 and 16 bytes are read with loads of
/// their width: an unaligned Rust read compiles to one load per byte on BPF (LLVM may not
/// assume the target allows misaligned access), which costs about a tenth of `vrrp_rx`'s
/// time on a valid advert. The kernels this runs on allow unaligned packet loads (x86_64,
/// arm64: the verifier is strict about packet alignment only where the CPU is).
#[inline(always)]
pub fn read_at<T: Copy>(data: usize, data_end: usize, offset: usize) -> Result<T, ()> {
    let p = ptr_at::<T>(data, data_end, offset)? as usize;
    // SAFETY: ptr_at checked that offset..offset+size_of::<T>() lies inside the packet; the
    // loads below read exactly those bytes, in memory order, into a value of T's size.
    Ok(unsafe {
        match size_of::<T>() {
            2 => core::mem::transmute_copy(&(load::<2>(p) as u16)),
            4 => core::mem::transmute_copy(&(load::<4>(p) as u32)),
            8 => core::mem::transmute_copy(&load::<8>(p)),
            16 => core::mem::transmute_copy(&[load::<8>(p), load::<8>(p + 8)]),
            _ => core::ptr::read_unaligned(p as *const T),
        }
    })
}

/// One `N`-byte load from `p`, zero-extended.
///
/// # Safety
///
/// `p..p + N` must be packet memory the verifier has seen checked.
#[inline(always)]
unsafe fn load<const N: usize>(p: usize) -> u64 {
    let v: u64;
    // SAFETY: the caller's; the asm reads N bytes at p and writes only its output register.
    unsafe {
        match N {
            2 => asm!("{v} = *(u16 *)({p} + 0)", v = out(reg) v, p = in(reg) p,
                      options(readonly, nostack, preserves_flags)),
            4 => asm!("{v} = *(u32 *)({p} + 0)", v = out(reg) v, p = in(reg) p,
                      options(readonly, nostack, preserves_flags)),
            _ => asm!("{v} = *(u64 *)({p} + 0)", v = out(reg) v, p = in(reg) p,
                      options(readonly, nostack, preserves_flags)),
        }
    }
    v
}

/// Reads a big-endian u16 at `offset`.
#[inline(always)]
pub fn read_be16(data: usize, data_end: usize, offset: usize) -> Result<u16, ()> {
    Ok(u16::from_be_bytes(read_at::<[u8; 2]>(
        data, data_end, offset,
    )?))
}
