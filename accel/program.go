package accel

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Offsets in a Link as the program sees it.
const (
	offPeer    = 0
	offSpilled = 4
	offMoved   = 8
	offBudget  = 16
	offLast    = 24
)

// program is the sk_skb verdict: look the socket's slot up by cookie, then
// redirect the skb to the peer's slot if the socket has not spilled and the
// skb fits the budget; otherwise mark it spilled and pass the skb to the
// socket itself (SK_PASS without a redirect).
func program(index, links, socks *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // the skb
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, index.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, links.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -12),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(asm.R7, asm.R0), // the Link
		asm.LoadMem(asm.R1, asm.R7, offSpilled, asm.Word),
		asm.JNE.Imm(asm.R1, 0, "pass"),
		asm.LoadMem(asm.R8, asm.R6, 0, asm.Word), // skb->len
		asm.LoadMem(asm.R1, asm.R7, offMoved, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R8),
		asm.LoadMem(asm.R2, asm.R7, offBudget, asm.DWord),
		asm.JGT.Reg(asm.R1, asm.R2, "spill"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, socks.FD()),
		asm.LoadMem(asm.R3, asm.R7, offPeer, asm.Word),
		asm.Mov.Imm(asm.R4, 0), // to the peer's egress
		asm.FnSkRedirectMap.Call(),
		asm.JNE.Imm(asm.R0, 1, "spill"),
		asm.AddAtomic.Mem(asm.R7, asm.R8, asm.DWord, offMoved),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.R7, offLast, asm.R0, asm.DWord),
		asm.Mov.Imm(asm.R0, 1), // SK_PASS with the redirect set: redirect
		asm.Return(),
		asm.StoreImm(asm.R7, offSpilled, 1, asm.Word).WithSymbol("spill"),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("pass"), // SK_PASS: to the socket's own queue
		asm.Return(),
	}
}
