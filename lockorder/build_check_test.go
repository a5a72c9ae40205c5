//go:build lockorder || race

package lockorder

const checkingBuild = true
