package steer

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// program builds the SK_REUSEPORT program of one address: among slots
// 0..n-1, the live one with the fewest sessions (the lowest slot on a tie),
// then its first socket, index slot of socks. No live slot, or a failed
// select: nothing is selected and the kernel hashes.
func program(state, socks *ebpf.Map, n int) asm.Instructions {
	label := func(i int) string { return fmt.Sprintf("slot%d", i) }
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // the context, for the select
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, state.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Imm(asm.R7, -1),   // best slot
		asm.Mov.Imm32(asm.R8, -1), // its sessions (u32 max)
	}
	for i := 0; i < n; i++ {
		next := label(i + 1)
		insns = append(insns,
			asm.LoadMem(asm.R3, asm.R0, int16(i*slotSize+4), asm.Word).WithSymbol(label(i)),
			asm.JEq.Imm(asm.R3, 0, next),
			asm.LoadMem(asm.R3, asm.R0, int16(i*slotSize), asm.Word),
			asm.JGE.Reg(asm.R3, asm.R8, next),
			asm.Mov.Reg(asm.R8, asm.R3),
			asm.Mov.Imm(asm.R7, int32(i)),
		)
	}
	return append(insns,
		asm.JSLT.Imm(asm.R7, 0, "pass").WithSymbol(label(n)),
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, socks.FD()),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -4),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkSelectReuseport.Call(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("pass"), // SK_PASS
		asm.Return(),
	)
}
