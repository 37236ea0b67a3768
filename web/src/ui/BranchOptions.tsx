/** The `<option>`s of a branch `<select>`: each branch by name, its id as the value. */
export function BranchOptions({ branches }: { branches: readonly { id: string; name: string }[] }) {
  return (
    <>
      {branches.map((branch) => (
        <option key={branch.id} value={branch.id}>
          {branch.name}
        </option>
      ))}
    </>
  );
}
