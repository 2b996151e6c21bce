//! The one bounds-checked accessor into packet memory.

use core::mem::size_of;

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

/// Reads a `T` (unaligned) at `offset`.
#[inline(always)]
pub fn read_at<T: Copy>(data: usize, data_end: usize, offset: usize) -> Result<T, ()> {
    let p = ptr_at::<T>(data, data_end, offset)?;
    // SAFETY: ptr_at checked that offset..offset+size_of::<T>() lies inside the packet.
    Ok(unsafe { core::ptr::read_unaligned(p) })
}

/// Reads a big-endian u16 at `offset`.
#[inline(always)]
pub fn read_be16(data: usize, data_end: usize, offset: usize) -> Result<u16, ()> {
    Ok(u16::from_be_bytes(read_at::<[u8; 2]>(
        data, data_end, offset,
    )?))
}
