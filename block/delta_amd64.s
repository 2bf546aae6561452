// Delta coding kernels for amd64 (see delta.go and delta_amd64.go).

#include "textflag.h"

// func diffMask64(x, y *[64]byte) uint64
TEXT ·diffMask64(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 0(DI), X4
	MOVOU 16(DI), X5
	MOVOU 32(DI), X6
	MOVOU 48(DI), X7
	PCMPEQB X4, X0
	PCMPEQB X5, X1
	PCMPEQB X6, X2
	PCMPEQB X7, X3
	PMOVMSKB X0, AX
	PMOVMSKB X1, BX
	PMOVMSKB X2, CX
	PMOVMSKB X3, DX
	SHLQ $16, BX
	SHLQ $32, CX
	SHLQ $48, DX
	ORQ BX, AX
	ORQ CX, AX
	ORQ DX, AX
	NOTQ AX
	MOVQ AX, ret+16(FP)
	RET

// func gather64(dst *byte, src *[64]byte, mask uint64) int
// Needs SSSE3 (PSHUFB) and POPCNT; writes up to 8 bytes past the result.
TEXT ·gather64(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ mask+16(FP), DX
	LEAQ ·gatherShuffle(SB), R9
	XORQ R8, R8

#define GROUP(off) \
	MOVQ DX, AX; \
	SHRQ $off, AX; \
	ANDQ $0xff, AX; \
	MOVQ off(SI), X0; \
	MOVQ (R9)(AX*8), X1; \
	PSHUFB X1, X0; \
	MOVQ X0, (DI)(R8*1); \
	POPCNTQ AX, AX; \
	ADDQ AX, R8

	GROUP(0)
	GROUP(8)
	GROUP(16)
	GROUP(24)
	GROUP(32)
	GROUP(40)
	GROUP(48)
	GROUP(56)
	MOVQ R8, ret+24(FP)
	RET

// func prefetchBytes(p *byte, n int)
TEXT ·prefetchBytes(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	LEAQ (SI)(CX*1), DX
	ANDQ $~63, SI
loop:
	CMPQ SI, DX
	JAE done
	PREFETCHT0 (SI)
	ADDQ $64, SI
	JMP loop
done:
	RET
